#include "runner/cli.h"

#include <boost/filesystem.hpp>
#include <cstdio>
#include <iostream>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "docker/client.h"
#include "runner/docker_conf.h"
#include "runner/git_identity.h"
#include "runner/progress.h"
#include "stages/lint.h"
#include "stages/stage_engine.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

const char* const usage_text =
    "usage: ce-run [OPTIONS] COMPDIR [INPUT...] [-- COMMAND [ARG...]]\n"
    "       ce-run lint COMPDIR\n"
    "\n"
    "Runs the computation in COMPDIR in a container of the base image named by\n"
    "COMPDIR/docker.conf, after applying the setup stages of COMPDIR/docker-setup.sh\n"
    "that are not cached yet and running its everytime steps. COMPDIR is\n"
    "bind-mounted read-only at its own path. With -- COMMAND, runs that command\n"
    "instead of COMPDIR/exec.\n"
    "\n"
    "options:\n"
    "  -n, --dry-run            show the plan (stages cached or to build); build\n"
    "                           and run nothing\n"
    "      --allow-dirty        run although COMPDIR has uncommitted changes\n"
    "      --keep-build-container\n"
    "                           keep the build container of a failed stage\n"
    "  -q, --quiet              only warnings and errors from ce-run itself\n"
    "  -v, --verbose            debug output\n"
    "  -h, --help               this text\n"
    "      --version            the version\n"
    "\n"
    "lint COMPDIR: print the setup script's warnings; exit 1 if there are any.\n"
    "\n"
    "exit status: the computation's own; 125 when ce-run or a setup step fails,\n"
    "126 when the command cannot be executed, 127 when it is not found.\n"
    "See docs/cli.md.\n";

void setup_logging(Verbosity verbosity) {
  auto logger = spdlog::stderr_logger_st("ce-run");
  logger->set_pattern("ce-run: %v");
  logger->set_level(verbosity == Verbosity::quiet     ? spdlog::level::warn
                    : verbosity == Verbosity::verbose ? spdlog::level::debug
                                                      : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Removes the run's container when the run ends, however it ends.
class ContainerGuard {
 public:
  ContainerGuard(docker::Client& client, std::string id) : client_(client), id_(std::move(id)) {}
  ~ContainerGuard() {
    try {
      client_.remove_container(id_, docker::Force::yes);
    } catch (const std::exception& e) {
      spdlog::warn("warning: could not remove container {}: {}", id_.substr(0, 12), e.what());
    }
  }

 private:
  docker::Client& client_;
  std::string id_;
};

void ensure_image(docker::Client& client, const std::string& image) {
  if (client.find_image(image)) return;
  spdlog::info("image {} is not here; pulling it", image);
  client.pull_image(image, [](const docker::PullProgress& p) {
    if (p.progress.empty()) spdlog::debug("pull: {} {}", p.id, p.status);
  });
}

// The computation directory as the user named it, for messages.
std::string shown(const Command& command, const std::string& file) {
  return (fs::path(command.compdir) / file).lexically_normal().string();
}

struct Computation {
  fs::path dir;
  std::string name;
  DockerConf conf;
  stages::SetupScript script;
};

Computation load(const Command& command) {
  Computation c;
  if (!fs::is_directory(command.compdir))
    throw std::runtime_error(command.compdir + ": not a directory; give the computation's directory");
  c.dir = fs::canonical(command.compdir);
  c.conf = load_docker_conf((c.dir / "docker.conf").string());
  c.name = c.conf.name.empty() ? c.dir.filename().string() : c.conf.name;
  c.script = stages::load_setup_script((c.dir / "docker-setup.sh").string(), shown(command, "docker-setup.sh"));
  return c;
}

std::vector<stages::Diagnostic> all_warnings(const stages::SetupScript& script) {
  auto warnings = script.warnings;
  auto lints = stages::lint(script);
  warnings.insert(warnings.end(), lints.begin(), lints.end());
  return warnings;
}

std::string format(const stages::SetupScript& script, const stages::Diagnostic& d) {
  return script.origin + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": warning: " + d.message;
}

int run_lint(const Command& command) {
  auto c = load(command);
  auto warnings = all_warnings(c.script);
  for (const auto& w : warnings) std::cout << format(c.script, w) << "\n";
  if (warnings.empty()) std::cout << c.script.origin << ": no warnings\n";
  return warnings.empty() ? 0 : 1;
}

void print_plan(const Computation& c, const GitIdentity& id, const stages::StagePlan& plan,
                const std::vector<std::string>& argv) {
  std::printf("computation %s in %s, commit %s, tree %s%s\n", c.name.c_str(), c.dir.c_str(),
              id.commit.substr(0, 12).c_str(), id.content_tree.substr(0, 12).c_str(),
              id.dirty_files.empty() ? "" : " (dirty)");
  std::printf("base image %s (%s)\n", plan.base_image.c_str(), plan.base_image_id.substr(0, 19).c_str());
  for (const auto& p : plan.steps) {
    const auto& s = *p.step;
    std::string what = s.kind == stages::StepKind::stage ? "stage " + std::to_string(s.stage_number)
                                                         : "everytime " + std::to_string(s.index);
    std::string state = s.kind == stages::StepKind::everytime ? "would run" : p.cached ? "cached" : "would build";
    std::printf("  %-13s %-28s %-16s %s\n", what.c_str(), c.script.lines_of(s).c_str(),
                p.key.empty() ? "" : ("key " + p.key.substr(0, 12)).c_str(), state.c_str());
  }
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  std::printf("then run: %s\n", command.c_str());
}

int run_computation(const Command& command) {
  auto c = load(command);
  for (const auto& w : all_warnings(c.script)) spdlog::warn("{}", format(c.script, w));

  std::vector<std::string> argv = command.command;
  if (argv.empty()) {
    fs::path exec = c.dir / "exec";
    if (!fs::exists(exec)) {
      spdlog::error("error: {}: no exec file; add one, or give a command after --", shown(command, "exec"));
      return exit_code::not_found;
    }
    if (::access(exec.c_str(), X_OK) != 0) {
      spdlog::error("error: {}: not executable; chmod +x it", shown(command, "exec"));
      return exit_code::not_executable;
    }
    argv.push_back(exec.string());
    argv.insert(argv.end(), command.inputs.begin(), command.inputs.end());
  }

  auto identity = identify(c.dir.string());
  if (!identity.dirty_files.empty() && !command.allow_dirty) {
    std::string files;
    for (std::size_t i = 0; i < identity.dirty_files.size() && i < 20; ++i) files += "\n  " + identity.dirty_files[i];
    if (identity.dirty_files.size() > 20)
      files += "\n  ... and " + std::to_string(identity.dirty_files.size() - 20) + " more";
    throw std::runtime_error(command.compdir + " has uncommitted changes:" + files +
                             "\ncommit them, or run with --allow-dirty (results are then marked dirty)");
  }

  docker::Client client;
  auto engine = client.check_engine();
  spdlog::debug("engine {} (API {}) at {}", engine.version, engine.api_version, client.address().uri());
  ensure_image(client, c.conf.image);
  auto base = client.inspect_image(c.conf.image);
  auto plan = stages::plan_stages(client, c.script, c.conf.image, {base.id, identity.content_tree});
  if (command.dry_run) {
    print_plan(c, identity, plan, argv);
    return 0;
  }

  std::vector<std::string> env = {"COMPDIR=" + c.dir.string(), "CE_COMMIT=" + identity.commit};
  TerminalProgress progress(c.script, command.verbosity);
  stages::ApplyOptions options;
  options.computation = c.name;
  options.compdir = c.dir.string();
  options.env = env;
  options.keep = command.keep_build_container ? stages::KeepBuildContainer::on_failure : stages::KeepBuildContainer::no;
  auto applied = stages::apply_stages(client, c.script, plan, options, progress);

  docker::ContainerSpec spec;
  spec.image = applied.image_id;
  spec.entrypoint = {"sleep"};
  spec.cmd = {"2147483647"};
  spec.init = true;
  spec.env = env;
  spec.binds = {{c.dir.string(), c.dir.string(), docker::Access::read_only}};
  spec.labels = {{"ce-run.computation", c.name}, {"ce-run.compdir", c.dir.string()},
                 {"ce-run.commit", identity.commit}};
  auto id = client.create_container(spec);
  ContainerGuard guard(client, id);
  client.start_container(id);
  spdlog::debug("container {} from {}", id.substr(0, 12), applied.image_id.substr(0, 19));

  bool has_everytime = false;
  for (const auto& s : c.script.steps) has_everytime |= s.kind == stages::StepKind::everytime;
  if (has_everytime) {
    auto shell = stages::detect_shell(client, id, c.conf.image, progress);
    for (const auto& step : c.script.steps) {
      if (step.kind != stages::StepKind::everytime) continue;
      progress.step_started(step, stages::StepStatus::ran);
      auto start = std::chrono::steady_clock::now();
      std::string tail;
      int code = stages::run_step(client, id, c.script, step, shell, env, progress, &tail);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (code != 0) {
        throw stages::StepFailed(describe_step(c.script, step) + " failed with exit code " + std::to_string(code) +
                                     (tail.empty() ? " and printed nothing" : "; its last lines:\n" + tail) +
                                     "fix it and run again",
                                 code, {});
      }
      progress.step_finished(step, stages::StepStatus::ran, seconds);
    }
  }

  docker::ExecSpec exec;
  exec.cmd = argv;
  exec.env = env;
  exec.working_dir = c.dir.string();
  return client.run_exec(id, exec, [](docker::StreamKind kind, std::string_view bytes) {
    auto* out = kind == docker::StreamKind::stderr_stream ? stderr : stdout;
    std::fwrite(bytes.data(), 1, bytes.size(), out);
    std::fflush(out);
  });
}

}  // namespace

Command parse_command_line(const std::vector<std::string>& args) {
  Command command;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      command.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      if (command.command.empty()) throw UsageError("'--' must be followed by a command");
      break;
    }
    if (a == "-h" || a == "--help") {
      command.action = Command::Action::help;
    } else if (a == "--version") {
      command.action = Command::Action::version;
    } else if (a == "-q" || a == "--quiet") {
      command.verbosity = Verbosity::quiet;
    } else if (a == "-v" || a == "--verbose") {
      command.verbosity = Verbosity::verbose;
    } else if (a == "-n" || a == "--dry-run") {
      command.dry_run = true;
    } else if (a == "--allow-dirty") {
      command.allow_dirty = true;
    } else if (a == "--keep-build-container") {
      command.keep_build_container = true;
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'; see ce-run --help");
    } else {
      positional.push_back(a);
    }
  }
  if (command.action != Command::Action::run) return command;
  if (!positional.empty() && positional[0] == "lint") {
    command.action = Command::Action::lint;
    positional.erase(positional.begin());
    if (positional.size() != 1) throw UsageError("lint takes one computation directory: ce-run lint COMPDIR");
  }
  if (positional.empty()) throw UsageError("no computation directory given; see ce-run --help");
  command.compdir = positional[0];
  command.inputs.assign(positional.begin() + 1, positional.end());
  return command;
}

int run(const Command& command) {
  switch (command.action) {
    case Command::Action::help:
      std::cout << usage_text;
      return 0;
    case Command::Action::version:
      std::cout << "ce-run " << CE_RUN_VERSION << "\n";
      return 0;
    case Command::Action::lint:
      return run_lint(command);
    case Command::Action::run:
      return run_computation(command);
  }
  return exit_code::runner_error;
}

int main(int argc, char** argv) {
  Command command;
  try {
    command = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "ce-run: error: %s\n", e.what());
    return exit_code::runner_error;
  }
  setup_logging(command.verbosity);
  try {
    return run(command);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "ce-run: error: %s\n", e.what());
    return exit_code::runner_error;
  }
}

}  // namespace ce::runner
