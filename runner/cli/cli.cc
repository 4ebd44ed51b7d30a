#include "runner/cli/cli.h"

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstdio>
#include <iostream>
#include <optional>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "runner/cli/run_command.h"
#include "runner/cli/subcommands.h"
#include "runner/cli/task_command.h"
#include "runner/task.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

const char* const usage_text =
    "usage: ce-run [OPTIONS] COMPDIR [INPUT...] [-- COMMAND [ARG...]]\n"
    "       ce-run [OPTIONS] TASKDIR [INPUT...]\n"
    "       ce-run lint|status|why COMPDIR\n"
    "       ce-run shell COMPDIR [-- COMMAND [ARG...]]\n"
    "       ce-run gc [-n] [--keep N] [--results] [--gfs DIR] COMPDIR\n"
    "       ce-run sym TASKDIR\n"
    "       ce-run graph [-o FILE] [--gfs DIR] TASKDIR [INPUT...]\n"
    "       ce-run log [--gfs DIR] TASKDIR NODE [INPUT...]\n"
    "       ce-run fleet status\n"
    "       ce-run serve [--listen ADDR:PORT] [--state DIR] [--conf FILE]\n"
    "\n"
    "Runs the computation in COMPDIR in a container of the base image named by\n"
    "COMPDIR/docker.conf, after applying the setup stages of COMPDIR/docker-setup.sh\n"
    "that are not cached yet and running its everytime steps. COMPDIR is\n"
    "bind-mounted read-only at its own path. With -- COMMAND, runs that command\n"
    "instead of COMPDIR/exec.\n"
    "\n"
    "A TASKDIR (a directory with workflow/) is a CompEval task: its calls run as a\n"
    "graph, each distinct call once, up to -j at once (docs/workflows.md).\n"
    "\n"
    "options:\n"
    "  -n, --dry-run            show the plan (stages cached or to build); build\n"
    "                           and run nothing; exit 3 if something would be\n"
    "                           computed\n"
    "  -j, --jobs N             a task: run up to N calls at once (default: the\n"
    "                           number of cores)\n"
    "      --fail-fast          a task: start no call after the first failure\n"
    "      --junit FILE         a task: write a JUnit XML file of its calls\n"
    "      --gfs DIR            the global file storage (default: $GFSDIR, else\n"
    "                           /var/lib/ce-run/gfs), mounted read-write at DIR\n"
    "      --report FILE        write a JSON report of the run to FILE (also when\n"
    "                           it fails); schema in docs/cli.md\n"
    "      --allow-dirty        run although COMPDIR has uncommitted changes\n"
    "      --verify             re-hash a done call's outputs against its record\n"
    "      --incremental        a new commit's container continues from a snapshot\n"
    "                           of an ancestor commit's, when the stages match\n"
    "      --swarm              run each call not filed yet as a job of the Docker\n"
    "                           Swarm this engine manages (docs/fleet.md)\n"
    "      --keep-build-container\n"
    "                           keep the build container of a failed stage\n"
    "  -q, --quiet              only warnings and errors from ce-run itself\n"
    "  -v, --verbose            debug output\n"
    "  -h, --help               this text\n"
    "      --version            the version\n"
    "\n"
    "commands:\n"
    "  lint    the setup script's warnings; exit 1 if there are any\n"
    "  status  the computation's containers (one per commit) and stage images\n"
    "  why     what changed since the last run: commit, tree, base image, stages\n"
    "  shell   a shell (or COMMAND) as root in the commit's container\n"
    "  gc      remove containers and stage images not needed by the --keep N\n"
    "          (default 3) most recent commits, staging directories of dead\n"
    "          calls, with --results GFS results no branch reaches; -n lists only\n"
    "  sym     the task as CompEval's ce-sym printed it\n"
    "  graph   the task's graph of calls in Graphviz dot, with each call's state\n"
    "          when given the inputs; -o FILE.svg|.png|.pdf renders it\n"
    "  log     the standard output and error of a task node's call\n"
    "  fleet status\n"
    "          the Swarm's nodes (state, resources, ce-run's calls on each) and\n"
    "          the calls waiting for a node (docs/fleet.md)\n"
    "  serve   the job service: runs over HTTP, a web dashboard (docs/service.md);\n"
    "          --listen (default 127.0.0.1:7070), --state (default\n"
    "          /var/lib/ce-run/service) and --conf (default\n"
    "          /etc/ce-run/service.conf) override its settings\n"
    "\n"
    "exit status: the computation's own (a task: 0 when every output exists, 1\n"
    "when a call failed); 125 when ce-run or a setup step fails,\n"
    "126 when the command cannot be executed, 127 when it is not found, 124\n"
    "when docker.conf's timeout stopped it, 130/143 when interrupted, 141 when\n"
    "ce-run's standard output was closed.\n"
    "See docs/cli.md.\n";

void setup_logging(Verbosity verbosity) {
  auto logger = spdlog::stderr_logger_st("ce-run");
  logger->set_pattern("ce-run: %v");
  logger->set_level(verbosity == Verbosity::quiet     ? spdlog::level::warn
                    : verbosity == Verbosity::verbose ? spdlog::level::debug
                                                      : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// The value of `--name VALUE` or `--name=VALUE` at args[i] (advancing i past
// a separate value); nullopt if args[i] is another argument. An empty or
// missing value is a usage error saying what `--name` needs.
std::optional<std::string> option_value(const std::vector<std::string>& args, std::size_t& i,
                                        const std::string& name, const std::string& needs) {
  const std::string& a = args[i];
  std::string value;
  if (a == name) {
    if (i + 1 < args.size()) value = args[++i];
  } else if (a.rfind(name + "=", 0) == 0) {
    value = a.substr(name.size() + 1);
  } else {
    return std::nullopt;
  }
  if (value.empty()) throw UsageError(name + " needs " + needs);
  return value;
}

}  // namespace

namespace {

// Which commands take each option: one given elsewhere is refused, never
// silently ignored (`ce-run --keep 5 DIR` would otherwise run DIR).
using Action = Command::Action;
struct OptionRule {
  const char* name;  // as --help shows it
  std::vector<Action> actions;
};
const OptionRule option_rules[] = {
    {"--dry-run", {Action::run, Action::gc}},
    {"--gfs", {Action::run, Action::gc, Action::graph, Action::log}},
    {"--report", {Action::run}},
    {"--jobs", {Action::run}},
    {"--fail-fast", {Action::run}},
    {"--junit", {Action::run}},
    {"-o", {Action::graph}},
    {"--allow-dirty", {Action::run, Action::graph, Action::log, Action::sym}},
    {"--verify", {Action::run}},
    {"--incremental", {Action::run}},
    {"--keep-build-container", {Action::run}},
    {"--keep", {Action::gc}},
    {"--results", {Action::gc}},
    {"--swarm", {Action::run}},
    {"--listen", {Action::serve}},
    {"--state", {Action::serve}},
    {"--conf", {Action::serve}},
};

const char* action_name(Action action) {
  switch (action) {
    case Action::lint: return "lint";
    case Action::status: return "status";
    case Action::gc: return "gc";
    case Action::why: return "why";
    case Action::shell: return "shell";
    case Action::log: return "log";
    case Action::sym: return "sym";
    case Action::graph: return "graph";
    case Action::fleet_status: return "fleet status";
    case Action::serve: return "serve";
    default: return "a run";
  }
}

void check_options_fit(Action action, const std::vector<std::pair<std::string, std::string>>& given) {
  for (const auto& [name, as_typed] : given) {
    for (const auto& rule : option_rules) {
      if (name != rule.name) continue;
      if (std::find(rule.actions.begin(), rule.actions.end(), action) != rule.actions.end()) break;
      std::string takers;
      for (std::size_t k = 0; k < rule.actions.size(); ++k)
        takers += std::string(k == 0 ? "" : k + 1 == rule.actions.size() ? " and " : ", ") +
                  (rule.actions[k] == Action::run ? "a run" : action_name(rule.actions[k]));
      throw UsageError("'" + as_typed + "' is not an option of " + action_name(action) + "; only " + takers +
                       " take" + (rule.actions.size() == 1 ? "s" : "") + " it (see ce-run --help)");
    }
  }
}

}  // namespace

namespace {

// The options that only switch something on, each a member of Command.
bool Command::*flag_named(const std::string& name) {
  static const std::pair<const char*, bool Command::*> flags[] = {
      {"--results", &Command::gc_results},
      {"--verify", &Command::verify},
      {"--incremental", &Command::incremental},
      {"--allow-dirty", &Command::allow_dirty},
      {"--keep-build-container", &Command::keep_build_container},
      {"--fail-fast", &Command::fail_fast},
      {"--swarm", &Command::swarm},
  };
  for (const auto& [flag, member] : flags)
    if (name == flag) return member;
  return nullptr;
}

}  // namespace

Command parse_command_line(const std::vector<std::string>& args) {
  Command command;
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> given;  // option's name, as typed
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
      given.emplace_back("--dry-run", a);
    } else if (bool Command::*flag = flag_named(a)) {
      command.*flag = true;
      given.emplace_back(a, a);
    } else if (auto report = option_value(args, i, "--report", "a file: --report FILE")) {
      command.report = *report;
      given.emplace_back("--report", "--report");
    } else if (a.size() > 2 && a.rfind("-j", 0) == 0 && std::isdigit(static_cast<unsigned char>(a[2]))) {
      char* end = nullptr;
      unsigned long n = std::strtoul(a.c_str() + 2, &end, 10);
      if (*end != '\0' || n == 0 || n > 1024) throw UsageError("-j needs a number of calls from 1 to 1024: -j N");
      command.jobs = n;
      given.emplace_back("--jobs", "-j");
    } else if (auto junit = option_value(args, i, "--junit", "a file: --junit FILE")) {
      command.junit = *junit;
      given.emplace_back("--junit", "--junit");
    } else if (auto out = option_value(args, i, "-o", "a file: -o FILE.svg")) {
      command.output_file = *out;
      given.emplace_back("-o", "-o");
    } else if (std::optional<std::string> jobs;
               (jobs = option_value(args, i, "-j", "a number of calls: -j N")) ||
               (jobs = option_value(args, i, "--jobs", "a number of calls: --jobs N"))) {
      char* end = nullptr;
      unsigned long n = std::strtoul(jobs->c_str(), &end, 10);
      if (*end != '\0' || n == 0 || n > 1024) throw UsageError("-j needs a number of calls from 1 to 1024: -j N");
      command.jobs = n;
      given.emplace_back("--jobs", "-j");
    } else if (auto keep = option_value(args, i, "--keep", "a number of commits: --keep N")) {
      char* end = nullptr;
      unsigned long n = std::strtoul(keep->c_str(), &end, 10);
      if (*end != '\0' || n > 1000) throw UsageError("--keep needs a number of commits: --keep N");
      command.gc_keep = n;
      given.emplace_back("--keep", "--keep");
    } else if (auto gfs = option_value(args, i, "--gfs", "a directory: --gfs DIR")) {
      command.gfs = *gfs;
      given.emplace_back("--gfs", "--gfs");
    } else if (auto listen = option_value(args, i, "--listen", "an address: --listen ADDR:PORT")) {
      command.listen = *listen;
      given.emplace_back("--listen", "--listen");
    } else if (auto state = option_value(args, i, "--state", "a directory: --state DIR")) {
      command.state_dir = *state;
      given.emplace_back("--state", "--state");
    } else if (auto conf = option_value(args, i, "--conf", "a file: --conf FILE")) {
      command.conf = *conf;
      given.emplace_back("--conf", "--conf");
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'; see ce-run --help");
    } else {
      positional.push_back(a);
    }
  }
  if (command.action != Command::Action::run) return command;
  if (!positional.empty() && positional[0] == "fleet") {
    if (positional.size() != 2 || positional[1] != "status")
      throw UsageError("fleet takes one command: ce-run fleet status");
    command.action = Command::Action::fleet_status;
    if (!command.command.empty()) throw UsageError("fleet status takes no command after --");
    check_options_fit(command.action, given);
    return command;
  }
  if (!positional.empty() && positional[0] == "serve") {
    if (positional.size() != 1) throw UsageError("serve takes options only: ce-run serve [--listen ADDR:PORT] "
                                                 "[--state DIR] [--conf FILE]");
    if (!command.command.empty()) throw UsageError("serve takes no command after --");
    command.action = Command::Action::serve;
    check_options_fit(command.action, given);
    return command;
  }
  static const std::pair<const char*, Command::Action> subcommands[] = {
      {"lint", Command::Action::lint}, {"status", Command::Action::status}, {"gc", Command::Action::gc},
      {"why", Command::Action::why},   {"shell", Command::Action::shell},   {"sym", Command::Action::sym},
      {"graph", Command::Action::graph}, {"log", Command::Action::log}};
  for (const auto& [name, action] : subcommands) {
    if (positional.empty() || positional[0] != name) continue;
    command.action = action;
    positional.erase(positional.begin());
    if (action == Command::Action::log) {
      if (positional.size() < 2)
        throw UsageError("log takes a task and one of its nodes: ce-run log TASKDIR NODE [INPUT...]");
      command.node = positional[1];
      positional.erase(positional.begin() + 1);
    } else if (action == Command::Action::graph) {
      if (positional.empty()) throw UsageError("graph takes a task: ce-run graph TASKDIR [INPUT...]");
    } else if (positional.size() != 1) {
      throw UsageError(std::string(name) + " takes one " +
                       (action == Command::Action::sym ? "task directory: ce-run sym TASKDIR"
                                                       : std::string("computation directory: ce-run ") + name +
                                                             " COMPDIR"));
    }
    if (!command.command.empty() && action != Command::Action::shell)
      throw UsageError(std::string(name) + " takes no command after --");
    break;
  }
  check_options_fit(command.action, given);
  if (positional.empty()) throw UsageError("no computation directory given; see ce-run --help");
  command.compdir = positional[0];
  command.inputs.assign(positional.begin() + 1, positional.end());
  return command;
}

const char* usage() { return usage_text; }

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
    case Command::Action::status:
      return run_status(command);
    case Command::Action::gc:
      return run_gc(command);
    case Command::Action::why:
      return run_why(command);
    case Command::Action::shell:
      return run_shell(command);
    case Command::Action::log:
      return run_log(command);
    case Command::Action::sym:
      return run_sym(command);
    case Command::Action::graph:
      return run_graph(command);
    case Command::Action::fleet_status:
      return run_fleet_status(command);
    case Command::Action::serve:
      return run_serve(command);
    case Command::Action::run:
      if (is_task(command.compdir)) return run_task_command(command);
      if (command.jobs || command.fail_fast || !command.junit.empty())
        throw UsageError(command.compdir + " is a computation, not a task (a directory with workflow/): -j, "
                         "--fail-fast and --junit are a task's options");
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
