// The job service (docs/service.md): runs of computations and tasks taken
// over HTTP (http_server.h), queued, run through the call library and the
// task evaluator with the submitting user's rights, logged to files and
// kept in the store. It decides; http_server.h shows. Nothing here prints,
// exits or installs a signal handler: what happens goes to the `log`
// callback the caller gives.
//
//   Service service(settings);
//   service.start();                 // runs left unfinished are queued again
//   RunRecord run = service.submit("alice", spec);
//   ...
//   service.stop();                  // running runs stop; they run again at the next start
#pragma once

#include <Poco/JSON/Object.h>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/service/api.h"
#include "runner/service/service_conf.h"
#include "runner/service/store.h"

namespace ce::runner::service {

enum class LogLevel { info, warning, error };

struct ServiceSettings {
  ServiceConf conf;
  std::optional<Tokens> tokens;  // none: nothing can be changed (every POST and DELETE is refused)
  std::string host_conf;         // root's host.conf for every run (Invoker::host_conf); empty: the default
  std::string supervisor;        // ce-run-supervise (HostSettings::supervisor); empty: beside the program
  unsigned cores = 0;            // 0: the machine's
  std::function<void(LogLevel, const std::string&)> log;
};

// A piece of a log: bytes from an offset, and whether that is the end.
struct LogPiece {
  std::string text;
  std::uint64_t next = 0;  // the offset after `text`
  bool complete = false;   // the log will not grow (its run or call ended)
};

struct ServiceCounters;

class Service {
 public:
  // Opens the state directory (made 0711 if missing; a second service on it
  // is refused) and its store. Throws std::runtime_error.
  explicit Service(ServiceSettings settings);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Queues again the runs a service before it left unfinished, then starts
  // taking runs.
  void start();
  // Stops every running run (nothing half-done is filed; they stay queued
  // and run again at the next start) and waits for them.
  void stop();

  const ServiceConf& conf() const;
  std::size_t max_calls() const;
  bool has_tokens() const;
  // The user a bearer token stands for.
  std::optional<std::string> user_of_token(std::string_view token) const;

  // Checks the request (ApiError 400/403/404 saying what is wrong), keeps
  // its uploads, and stores the run before it returns it (queued).
  RunRecord submit(const std::string& user, RunSpec spec);
  // A commit notification: the runs of the repository's targets at the
  // commit, stored before they are returned (ApiError 404 for a repository
  // service.conf does not name).
  std::vector<RunRecord> notify_commit(const CommitHook& hook);
  std::optional<RunRecord> run(std::int64_t id);
  // Waits up to `timeout` for the run to end (or the service to stop).
  void wait_finished(std::int64_t id, std::chrono::milliseconds timeout);
  std::vector<RunRecord> runs(const RunFilter& filter);
  // Cancels the run (ApiError 404, 403 for another user's, 409 for a
  // finished one) and waits up to `wait` for it to stop; returns its record.
  RunRecord cancel(const std::string& user, std::int64_t id, std::chrono::milliseconds wait);

  // `call` -1 is the run's own log (what the service did), else that call's
  // output. ApiError 404 for no such run or call.
  LogPiece read_log(std::int64_t id, int call, std::uint64_t offset, std::size_t max_bytes);
  // Returns when the log has bytes past `offset`, will not grow, the
  // service stops, or `timeout` passes.
  void wait_log(std::int64_t id, int call, std::uint64_t offset, std::chrono::milliseconds timeout);

  // The engine (or the swarm's nodes), with the calls running on each.
  Poco::JSON::Object::Ptr nodes();
  // Prometheus text format.
  std::string metrics();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ce::runner::service
