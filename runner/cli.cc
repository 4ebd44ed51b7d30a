#include "runner/cli.h"

#include <boost/filesystem.hpp>
#include <iostream>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "docker/client.h"
#include "runner/docker_conf.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

const char* const usage_text =
    "usage: ce-run [OPTIONS] COMPDIR [INPUT...] [-- COMMAND [ARG...]]\n"
    "\n"
    "Runs the computation in COMPDIR in a container of the base image named by\n"
    "COMPDIR/docker.conf, with COMPDIR bind-mounted read-only at its own path.\n"
    "With -- COMMAND, runs that command instead of COMPDIR/exec.\n"
    "\n"
    "options:\n"
    "  -q, --quiet     only errors from ce-run itself\n"
    "  -v, --verbose   debug output\n"
    "  -h, --help      this text\n"
    "      --version   the version\n"
    "\n"
    "exit status: the computation's own; 125 when ce-run itself fails,\n"
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

// Removes the container when the run ends, however it ends.
class ContainerGuard {
 public:
  ContainerGuard(docker::Client& client, std::string id) : client_(client), id_(std::move(id)) {}
  ~ContainerGuard() {
    try {
      client_.remove_container(id_, docker::Force::yes);
    } catch (const std::exception& e) {
      spdlog::warn("could not remove container {}: {}", id_.substr(0, 12), e.what());
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

int run_computation(const Command& command) {
  fs::path compdir = command.compdir;
  if (!fs::is_directory(compdir))
    throw std::runtime_error(command.compdir + ": not a directory; give the computation's directory");
  compdir = fs::canonical(compdir);
  auto conf = load_docker_conf((compdir / "docker.conf").string());
  std::string name = conf.name.empty() ? compdir.filename().string() : conf.name;

  std::vector<std::string> argv = command.command;
  if (argv.empty()) {
    fs::path exec = compdir / "exec";
    if (!fs::exists(exec)) {
      spdlog::error("{}: no exec file; add one, or give a command after --", exec.string());
      return exit_code::not_found;
    }
    if (::access(exec.c_str(), X_OK) != 0) {
      spdlog::error("{}: not executable; chmod +x it", exec.string());
      return exit_code::not_executable;
    }
    argv.push_back(exec.string());
    argv.insert(argv.end(), command.inputs.begin(), command.inputs.end());
  }

  docker::Client client;
  auto engine = client.check_engine();
  spdlog::debug("engine {} (API {}) at {}", engine.version, engine.api_version, client.address().uri());
  ensure_image(client, conf.image);

  docker::ContainerSpec spec;
  spec.image = conf.image;
  spec.cmd = {"sleep", "2147483647"};
  spec.init = true;
  spec.env = {"COMPDIR=" + compdir.string()};
  spec.binds = {{compdir.string(), compdir.string(), docker::Access::read_only}};
  spec.labels = {{"ce-run.computation", name}, {"ce-run.compdir", compdir.string()}};
  auto id = client.create_container(spec);
  ContainerGuard guard(client, id);
  client.start_container(id);
  spdlog::debug("container {} from {}", id.substr(0, 12), conf.image);

  docker::ExecSpec exec;
  exec.cmd = argv;
  exec.env = spec.env;
  exec.working_dir = compdir.string();
  int code = client.run_exec(id, exec, [](docker::StreamKind kind, std::string_view bytes) {
    auto& out = kind == docker::StreamKind::stderr_stream ? std::cerr : std::cout;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
  });
  return code;
}

}  // namespace

Command parse_command_line(const std::vector<std::string>& args) {
  Command command;
  std::vector<std::string> positional;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
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
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'; see ce-run --help");
    } else {
      positional.push_back(a);
    }
  }
  if (command.action != Command::Action::run) return command;
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
    std::cerr << "ce-run: error: " << e.what() << "\n";
    return exit_code::runner_error;
  }
  setup_logging(command.verbosity);
  try {
    return run(command);
  } catch (const std::exception& e) {
    std::cerr << "ce-run: error: " << e.what() << "\n";
    return exit_code::runner_error;
  }
}

}  // namespace ce::runner
