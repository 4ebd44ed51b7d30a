// `ce-run COMPDIR`: the command line around one call (runner/call.h). It
// turns the options into a request, SIGINT/SIGTERM and a closed standard
// output into the call's token, the events into lines on stderr, and the
// result into stdout's output lines, the --report file and the exit code.
#include "runner/cli/run_command.h"

#include <boost/filesystem.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "docker/client.h"
#include "runner/cli/signals.h"
#include "runner/cli/terminal_events.h"
#include "runner/compdir.h"
#include "runner/invoker.h"

namespace ce::runner {

namespace fs = boost::filesystem;

std::string resolve_gfs(const Command& command) {
  std::string dir = command.gfs;
  if (dir.empty()) {
    const char* env = std::getenv("GFSDIR");
    if (env && *env) dir = env;
  }
  if (dir.empty()) {
    dir = default_gfs;
    if (!fs::exists(dir)) {
      spdlog::info("using the default global file storage {} (set GFSDIR or --gfs to choose another)", dir);
      fs::create_directories(dir);
    }
  }
  if (!fs::is_directory(dir))
    throw std::runtime_error("the global file storage " + dir + " is not a directory; create it, or point --gfs "
                             "or GFSDIR at one");
  return fs::canonical(dir).string();
}

int run_lint(const Command& command) {
  auto c = load_computation(command.compdir, invoking_user());
  auto warnings = all_warnings(c.script, c.comp.conf);
  for (const auto& w : warnings) std::cout << format_diagnostic(c.script, w) << "\n";
  if (warnings.empty()) std::cout << c.script.origin << ": no warnings\n";
  return warnings.empty() ? 0 : 1;
}

namespace {

// Before anything else: an engine socket we may not use is the user's first
// problem. (Only a local check: a call that is done needs no engine at all.)
void check_socket_access(const docker::EngineAddress& address) {
  if (address.kind != docker::EngineAddress::Kind::unix_socket) return;
  if (::access(address.path.c_str(), F_OK) == 0 && ::access(address.path.c_str(), R_OK | W_OK) != 0)
    throw std::runtime_error("permission denied on the Docker engine socket " + address.uri() +
                             ": ce-run must run as root or as a member of the docker group");
}

const char* shown_status(OutputStatus status) {
  switch (status) {
    case OutputStatus::cached: return "ok";
    case OutputStatus::computed: return "computed";
    case OutputStatus::missing: return "MISSING";
    case OutputStatus::verified: return "verified";
  }
  return "MISSING";
}

void print_plan(const CallResult& result) {
  const ReportFacts& f = result.facts;
  std::printf("computation %s in %s, commit %s, tree %s%s\n", f.name.c_str(), f.dir.c_str(),
              f.commit.substr(0, 12).c_str(), f.tree.substr(0, 12).c_str(), f.dirty ? " (dirty)" : "");
  std::printf("base image %s (%s)\n", f.base_image.c_str(), f.base_image_id.substr(0, 19).c_str());
  for (const auto& s : f.steps) {
    bool stage = s.kind == "stage";
    std::string what = stage ? "stage " + std::to_string(s.stage_number) : "everytime " + std::to_string(s.index);
    std::string state = !stage ? "would run" : s.status == "cached" ? "cached" : "would build";
    std::printf("  %-13s %-40s %-16s %s\n", what.c_str(), s.lines.c_str(),
                s.key.empty() ? "" : ("key " + s.key.substr(0, 12)).c_str(), state.c_str());
  }
  std::printf("container: %s\n", result.plan_container.c_str());
  std::string command;
  for (const auto& a : result.argv) command += (command.empty() ? "" : " ") + a;
  std::printf("then run: %s\n", command.empty() ? "nothing: there is no command (below)" : command.c_str());
}

}  // namespace

int run_computation(const Command& command) {
  Invoker invoker = invoking_user();
  CallRequest request;
  request.compdir = command.compdir;
  request.inputs = command.inputs;
  request.command = command.command;
  request.dirty = command.allow_dirty ? DirtyPolicy::allow : DirtyPolicy::refuse;
  request.start = command.incremental ? StartPolicy::from_ancestor : StartPolicy::fresh;
  request.mode = command.verify ? CallMode::verify : command.dry_run ? CallMode::dry_run : CallMode::run;
  request.keep_build_container = command.keep_build_container;
  request.swarm = command.swarm;
  request.invoker = invoker;

  docker::Client client;
  docker::Cancellation cancel;
  // Installed once the call may touch the engine: a call that is done
  // (the no-change path) starts no thread for it.
  std::optional<StopWatch> stop;
  TerminalEvents events(command.verbosity);
  // A reader that went away (`ce-run ... | head -1`) stops the run, as
  // SIGPIPE would stop a program that wrote there.
  auto sink = [&](docker::StreamKind kind, std::string_view bytes) {
    if (stop && stop->output_lost()) return;
    auto* out = kind == docker::StreamKind::stderr_stream ? stderr : stdout;
    if ((std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size() || std::fflush(out) != 0) && errno == EPIPE &&
        stop)
      stop->output_closed();
  };

  CallResult result;
  try {
    check_socket_access(client.address());
    request.host.gfs = resolve_gfs(command);
  } catch (const std::exception& e) {
    result.message = e.what();
  }
  if (result.message.empty()) {
    // run_call's steps, with the signals turned into the token from the
    // plan on (before it, Ctrl-C ends ce-run as it ends any program).
    CallPipeline pipeline(request, events);
    if (pipeline.prepare()) {
      if (request.mode == CallMode::verify) {
        pipeline.verify();
      } else if (pipeline.find_done()) {
        stop.emplace(cancel);
        if (pipeline.plan(client)) pipeline.run(client, sink, cancel);
      }
    }
    result = pipeline.result();
  }

  if (request.mode == CallMode::dry_run && !result.facts.base_image_id.empty()) print_plan(result);
  for (const auto& p : result.problems) std::printf("%s\n", p.c_str());
  for (const auto& o : result.outputs) std::printf("%s %s\n", o.path.c_str(), shown_status(o.status));
  std::fflush(stdout);

  int code = exit_code_for(result);
  if (result.outcome == Outcome::cancelled && stop) {
    if (stop->output_lost()) {
      code = exit_code::output_closed;
      spdlog::error("error: ce-run's standard output was closed, so the command was stopped");
    } else {
      code = stop->signal() == SIGTERM ? 143 : exit_code::interrupted;
      spdlog::error("error: ce-run was interrupted ({})", stop->signal() == SIGTERM ? "SIGTERM" : "SIGINT");
    }
  }
  if (result.outcome == Outcome::corrupt)
    spdlog::warn("warning: {}", result.message);
  else if (!result.message.empty())
    spdlog::error("error: {}", result.message);
  // A report that cannot be written is the run's error (main prints it).
  if (!command.report.empty()) write_report(command.report, report_json(result, code), invoker);
  return code;
}

}  // namespace ce::runner
