// A task evaluated as a graph of calls (docs/workflows.md): each distinct
// call once, up to `jobs` at once, each as soon as the calls it needs have
// filed their outputs. Every call is the library's call (call.h): the same
// GFS names, records and locks as `ce-run COMPDIR`, so results are shared
// with single calls and with other processes evaluating the same task.
// Like a call, it prints nothing and never throws: the caller gets events
// as it goes and a TaskRun at the end.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runner/task.h"

namespace ce::runner {

enum class CallState {
  waiting,        // for the calls it needs, or for a free job
  running,        // its result was not in the GFS: it is being computed
  reused,         // its result was in the GFS
  computed,       // it ran and filed its outputs
  failed,         // it ran (or tried to) and filed nothing: result says why
  skipped,        // a call it needs failed (or --fail-fast stopped the task)
  would_compute,  // a dry run: its result is not in the GFS
  unknown,        // a dry run: it needs an output that does not exist yet
};
const char* to_string(CallState state);

struct TaskCallRun {
  CallState state = CallState::waiting;
  std::vector<std::string> input_paths;    // one a slot, once known
  std::vector<std::string> output_paths;   // every output of the computation, once named ("???" parts when unknown)
  CallResult result;                       // once it has ended (or was found done)
  std::size_t skipped_for = 0;             // skipped: the failed call it needed (or itself, for --fail-fast)
  std::string log_tail;                    // failed: the last lines its command wrote (stderr, else stdout)
};

struct TaskInputRun {
  std::string path;    // as given
  std::string sha1;
  std::string stored;  // GFSDIR/tinputs/H2/H10
  bool stored_exists = false;
};

struct TaskRunRequest {
  std::vector<std::string> inputs;  // by position, for Task::input_names
  std::size_t jobs = 1;
  bool fail_fast = false;
  bool dry_run = false;  // name every call and run nothing; nothing is written anywhere
  StartPolicy start = StartPolicy::fresh;
  bool keep_build_container = false;
  DirtyPolicy dirty = DirtyPolicy::refuse;
  bool swarm = false;  // each call as a job of the swarm (CallRequest::swarm)
  CallGate* gate = nullptr;  // entered by each call that computes (none: only `jobs` limits)
  HostSettings host;
  Invoker invoker;
};

struct TaskRun {
  std::vector<TaskCallRun> calls;  // as Task::calls
  std::vector<TaskInputRun> inputs;
  std::vector<std::string> literals;  // full paths, as Task::literals
  std::vector<std::string> outputs;   // the task's outputs' paths (with "???" parts when unknown)
  bool complete = false;   // every output of the task exists
  bool cancelled = false;  // the caller's token stopped it
  std::string error;       // ce-run's own failure before any call (an input, the GFS)
  double seconds = 0;
};

class TaskEvents {
 public:
  virtual ~TaskEvents() = default;
  // The events of one call's pipeline (its steps' output and notes); the
  // object must live until the task ends. Called from any thread.
  virtual CallEvents& call_events(std::size_t call) = 0;
  // The task's inputs are hashed (and stored) and its literals named;
  // no call has started.
  virtual void started(const TaskRun& /*run*/) {}
  // Its names are known: state reused, running, would_compute or unknown.
  virtual void call_named(std::size_t /*call*/, const TaskCallRun& /*run*/) {}
  // It has ended: computed, reused, failed or skipped.
  virtual void call_ended(std::size_t /*call*/, const TaskCallRun& /*run*/) {}
  // What its command writes, as it comes (also kept in the GFS's logs).
  virtual void call_output(std::size_t /*call*/, docker::StreamKind /*kind*/, std::string_view /*bytes*/) {}
};

// Evaluates the task. The token stops every running call (their results
// are not filed) and starts no new one.
TaskRun run_task(const Task& task, const TaskRunRequest& request, docker::Client& client, TaskEvents& events,
                 docker::Cancellation& cancel);

// The files a source stands for (after run_task has named the calls).
std::string source_path(const TaskRun& run, const TaskSource& source);

}  // namespace ce::runner
