// One call of a computation, as a library: the command line, a workflow
// evaluator and a service run calls through this code, many at once in one
// process (one docker::Client may serve every thread).
//
//   CallRequest request{.compdir = "examples/wordfreq", .inputs = {"in.txt"}};
//   request.host.gfs = "/var/lib/ce-run/gfs";
//   request.invoker = invoking_user();
//   CallResult result = run_call(request, client, events, sink, token);
//   // result.outcome, result.message, result.outputs, result.facts
//
// The steps, in order (CallPipeline runs them one by one):
//   prepare    load docker.conf and docker-setup.sh, the commit (libgit2),
//              the GFS call and its inputs; touches no engine
//   find_done  whether the GFS holds the call's result; no engine
//   plan       the stage plan (asks the engine which stages are cached)
//   run        apply the stages, find or make the commit's container, run
//              the everytime steps and the command, file the outputs
//   verify     (instead of run) re-hash a done call's outputs
// Progress goes to CallEvents, the command's output to the sink, and the
// caller's cancellation token stops any step. Nothing here prints, exits or
// installs a signal handler: every failure ends as the result's outcome and
// a message that says what happened and what to do next.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "docker/cancellation.h"
#include "docker/client.h"
#include "docker/command_server.h"
#include "runner/compdir.h"
#include "runner/docker_conf.h"
#include "runner/fleet.h"
#include "runner/gfs.h"
#include "runner/git_identity.h"
#include "runner/invoker.h"
#include "runner/report.h"
#include "stages/stage_engine.h"

namespace ce::runner {

// Where the machine keeps what ce-run shares between calls.
inline constexpr const char* default_gfs = "/var/lib/ce-run/gfs";
inline constexpr const char* lock_dir = "/var/lib/ce-run/locks";        // root's alone (0700)
inline constexpr const char* staging_root = "/var/lib/ce-run/staging";  // root's alone (0700); gfs.h
struct HostSettings {
  std::string gfs;  // the GFS, an existing directory (canonical)
  std::string default_gfs = runner::default_gfs;  // may always be used (host.conf lists others)
  std::string lock_dir = runner::lock_dir;
  std::string staging_root = runner::staging_root;
  std::string supervisor;  // ce-run-supervise; empty: beside the running program
};

enum class DirtyPolicy { refuse, allow };          // uncommitted changes in COMPDIR
enum class StartPolicy { fresh, from_ancestor };   // a new commit's container: from the stages, or a snapshot
enum class CallMode { run, dry_run, verify };

struct PreparedComputation;

// Command servers (docker/command_server.h) that calls share: one per
// container and command settings, started when a call first needs it and
// stopped with this object. A task's evaluator holds one for its calls.
class CommandServers {
 public:
  CommandServers();
  ~CommandServers();
  std::shared_ptr<docker::CommandServer> get(docker::Client& client, const std::string& container,
                                             const docker::ExecSpec& spec, const std::string& supervisor);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<docker::CommandServer>> servers_;
};

struct CallRequest {
  std::string compdir;               // as the user named it: messages say it so
  // What an earlier prepare_computation() learnt of COMPDIR: prepare then
  // loads and identifies nothing again (a task's calls of one computation
  // share it). Must be of this compdir, invoker, command and dirty policy.
  std::shared_ptr<const PreparedComputation> computation;
  // The GFS (host.gfs) opened already: a task's calls share one, so each
  // directory of it is walked to once (gfs.h).
  std::shared_ptr<const Gfs> open_gfs;
  // Run the command through a shared command server rather than an exec
  // of its own (a task's calls: much cheaper, the same supervision).
  CommandServers* servers = nullptr;
  std::vector<std::string> inputs;
  std::vector<std::string> command;  // empty: the computation's exec
  DirtyPolicy dirty = DirtyPolicy::refuse;
  StartPolicy start = StartPolicy::fresh;
  CallMode mode = CallMode::run;
  bool keep_build_container = false;  // of a failed stage, for inspection
  HostSettings host;
  Invoker invoker;  // whose rights COMPDIR, the inputs and the mapping are used with
  // Run the command as a job of the swarm this engine manages, rather than
  // in the commit's container here (docs/fleet.md); host.conf's swarm =
  // true does so too.
  bool swarm = false;
};

enum class Outcome {
  cached,          // the GFS held the result: nothing ran
  computed,        // the command ran and exited 0; a call's outputs are filed
  command_failed,  // the command exited non-zero (exit_code); nothing filed
  timed_out,       // the command ran past docker.conf's timeout and was stopped
  cancelled,       // the caller's token stopped the call
  engine_lost,     // the engine went away while the command ran: its result is unknown
  gfs_full,        // the staging file system filled up: the outputs may be cut short
  setup_failed,    // a stage or an everytime step exited non-zero (exit_code)
  no_exec,         // there is no command to run
  not_executable,  // the exec is not an executable regular file
  planned,         // a dry run: the plan is in the result
  verified,        // verify: the outputs match their record
  corrupt,         // verify: they do not (the record is withdrawn)
  failed,          // anything else: bad input, a refused path, an engine error
};
const char* to_string(Outcome outcome);

enum class OutputStatus { cached, computed, missing, verified };
const char* to_string(OutputStatus status);

struct OutputState {
  std::string name, path;
  OutputStatus status = OutputStatus::missing;
  std::string sha256;  // from the call's record: cached, computed or verified
};

struct CallResult {
  Outcome outcome = Outcome::failed;
  int exit_code = 0;      // the command's (or the failed step's) own
  std::string message;    // what happened and what to do; empty when all went well
  std::vector<OutputState> outputs;  // a call's, in `outputs` order
  std::vector<std::string> problems;  // verify: each difference found
  std::string plan_container;  // a dry run: what would happen to the commit's container
  std::vector<std::string> argv;  // the command run (or to run)
  // Where the command's standard output and error are kept in the GFS
  // (a GFS call that ran its command: computed, failed or timed out).
  std::string stdout_log, stderr_log;
  ReportFacts facts;
};

// What prepare learns of COMPDIR, whatever the inputs: the loaded
// computation, its contract and command, and its commit.
struct PreparedComputation {
  Computation c;
  std::optional<CallContract> contract;  // a CompEval computation's
  std::vector<std::string> argv;         // the command, without the inputs
  std::string no_command;                // why there is none to run (then argv is empty)
  Outcome no_command_outcome = Outcome::no_exec;
  GitIdentity identity;
  std::string id;           // computation_id(identity)
  std::string mapping_key;  // container_mapping.h
  double load_seconds = 0, identity_seconds = 0;
};

// Loads COMPDIR (docker.conf, docker-setup.sh, the contract) and identifies
// its commit, as the first step of a call does. Throws std::runtime_error
// with what to do (also for uncommitted changes the request refuses, and
// a missing exec unless the request is a dry run).
std::shared_ptr<const PreparedComputation> prepare_computation(const CallRequest& request);

// What a call reports while it works. Steps report through StepObserver.
enum class Level { debug, info, warning };
class CallEvents : public stages::StepObserver {
 public:
  // A line about the call: what ce-run does (info), what the user should
  // know (warning, without a "warning:" prefix).
  virtual void note(Level /*level*/, const std::string& /*text*/) {}
  // The setup script's lint warnings, once per run.
  virtual void diagnostics(const stages::SetupScript& /*script*/,
                           const std::vector<stages::Diagnostic>& /*warnings*/) {}
  virtual void phase_ended(const char* /*phase*/, double /*seconds*/) {}
};

// Admission of the calls that have to compute (their results are not in
// the GFS): a service's limit on calls at once. enter() waits its turn and
// returns false when the token is cancelled first; leave() frees the place.
class CallGate {
 public:
  virtual ~CallGate() = default;
  virtual bool enter(docker::Cancellation& cancel) = 0;
  virtual void leave() = 0;
};

// The steps of one call; each returns whether the call goes on (false:
// result() is final). A step never throws.
class CallPipeline {
 public:
  CallPipeline(CallRequest request, CallEvents& events);
  ~CallPipeline();
  CallPipeline(const CallPipeline&) = delete;
  CallPipeline& operator=(const CallPipeline&) = delete;

  bool prepare();
  // True when the GFS has no result (or the request is not a GFS call);
  // false with outcome cached (or, for a dry run, planned with the outputs
  // missing) otherwise.
  bool find_done();
  bool plan(docker::Client& client);
  // Applies, runs and files; the result is final afterwards.
  void run(docker::Client& client, const docker::OutputSink& sink, docker::Cancellation& cancel);
  // Re-hashes a done call's outputs; the result is final afterwards.
  void verify();

  const CallResult& result() const;
  const stages::SetupScript& script() const;  // after prepare
  // After prepare: where a GFS call's outputs are (or will be), in order;
  // empty for a call that is not a GFS call.
  std::vector<std::string> output_paths() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Every step in order, as the request's mode says.
CallResult run_call(const CallRequest& request, docker::Client& client, CallEvents& events,
                    const docker::OutputSink& sink, docker::Cancellation& cancel);

// The setup script's warnings, with those about an everytime step that
// looks as if it needs the network the computation's container lacks.
std::vector<stages::Diagnostic> all_warnings(const stages::SetupScript& script, const DockerConf& conf);

}  // namespace ce::runner
