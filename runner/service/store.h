// The job service's state: its runs and their calls, in an SQLite database
// (Poco Data) in the state directory. Every change is committed before the
// caller goes on (a client hears of a run only once it is on disk), so a
// service killed with -9 finds every accepted run again when it starts.
// One Store serves every thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace Poco::Data {
class Session;
}

namespace ce::runner::service {

// A run's states, in the order it goes through them.
namespace run_state {
inline constexpr const char* queued = "queued";        // accepted, waiting for its turn
inline constexpr const char* running = "running";
inline constexpr const char* succeeded = "succeeded";  // every call reused or computed
inline constexpr const char* failed = "failed";        // a call failed, or the run could not start (error)
inline constexpr const char* cancelled = "cancelled";  // DELETE: nothing of it runs any more
inline constexpr const char* all[] = {queued, running, succeeded, failed, cancelled};
}  // namespace run_state
bool finished_state(const std::string& state);

struct CallRecord {
  int index = 0;
  std::string node;         // a task's node path ("workflow/inputs/00-a"); the computation's dir for a single call
  std::string computation;  // its name
  std::string state;        // task_report.h's report_status words
  std::string report;       // the single call's report (JSON, report.h), once it ended
  std::vector<int> needs;   // a task's: the calls whose outputs it takes
  double started = 0, ended = 0;
};

struct RunRecord {
  std::int64_t id = 0;
  std::string user;        // whose rights it runs with
  std::string kind;        // "computation" | "task"
  std::string repository;  // the repository's work tree, canonical
  std::string path;        // in it ("" for its top)
  std::string ref;         // as asked: a branch, or "" (the work tree or a commit)
  std::string commit;      // as asked, then resolved (40 hex digits); "" for the work tree
  std::string state = run_state::queued;
  std::string request;     // the accepted request (JSON): what a restart runs again
  std::string error;       // why it failed before or beside its calls
  std::string hook;        // the notification that made it ("" for POST /v1/runs)
  double submitted = 0, started = 0, ended = 0;  // seconds since the epoch; 0: not yet
  int exit_code = -1;      // as `ce-run` would have exited; -1 while unfinished
  int attempts = 0;        // times started (a restart or a lost engine runs it again)
  std::string outputs;     // its outputs' GFS paths, a JSON array, once it ended
  std::vector<CallRecord> calls;
};

struct RunFilter {
  std::string state;       // empty: any
  std::string repository;  // empty: any
  std::string user;        // empty: any
  std::int64_t before = 0;  // ids below this (paging); 0: from the newest
  int limit = 50;
};

class Store {
 public:
  // Opens (creating) the database at `path`; throws std::runtime_error.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Adds the run and sets its id.
  void add_run(RunRecord& run);
  // Adds several in one transaction (a commit notification's runs).
  void add_runs(std::vector<RunRecord>& runs);
  // Writes its fields (not its calls).
  void update_run(const RunRecord& run);
  // Adds or replaces one call of a run.
  void put_call(std::int64_t run, const CallRecord& call);
  // Removes a run's calls (a run started again).
  void clear_calls(std::int64_t run);

  std::optional<RunRecord> run(std::int64_t id, bool with_calls = true);
  // Newest first.
  std::vector<RunRecord> runs(const RunFilter& filter);
  // Runs not finished (queued, running), oldest first.
  std::vector<RunRecord> unfinished();
  std::map<std::string, std::int64_t> count_by_state();

 private:
  std::mutex mutex_;
  std::unique_ptr<Poco::Data::Session> session_;
};

}  // namespace ce::runner::service
