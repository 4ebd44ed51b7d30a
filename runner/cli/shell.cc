// ce-run shell COMPDIR: an interactive shell in the commit's container.
// With a terminal on stdin it gets a real TTY (raw mode, the window size);
// without one, stdin and stdout are piped through, so scripts can use it too.
#include <algorithm>
#include <boost/filesystem.hpp>
#include <fstream>
#include <csignal>
#include <cstdio>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "docker/attach.h"
#include "docker/client.h"
#include "docker/stream_demux.h"
#include "runner/compdir.h"
#include "runner/container_mapping.h"
#include "runner/gfs.h"
#include "runner/invoker.h"
#include "runner/cli/run_command.h"
#include "runner/docker_conf.h"
#include "runner/git_identity.h"
#include "runner/cli/subcommands.h"
#include "runner/supervisor.h"
#include "stages/stage_engine.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

std::string random_token() {
  unsigned char bytes[16] = {};
  std::ifstream random("/dev/urandom", std::ios::binary);
  random.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  if (!random) throw std::runtime_error("cannot read /dev/urandom");
  std::string hex;
  for (unsigned char b : bytes) {
    static const char digits[] = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

// Puts the terminal in raw mode while alive.
class RawTerminal {
 public:
  RawTerminal() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

}  // namespace

int run_shell(const Command& command) {
  Invoker invoker = invoking_user();
  CompDir comp = open_compdir(command.compdir, invoker);
  const auto& conf = comp.conf;
  auto id = identify(comp.dir);
  std::string key = mapping_key(id);
  auto mapping = read_mapping(comp).mapping;
  const MappingEntry* entry = mapping.find(key);
  docker::Client client;
  client.check_engine();
  std::optional<docker::ContainerInfo> info;
  if (entry) info = client.find_container(entry->container);
  // The file is the user's: only this computation's own container is entered.
  if (info && !is_run_container_of(info->labels, comp.dir, key)) {
    spdlog::warn("warning: {} names the container {}, which is not this computation's container of commit {}",
                 comp.shown_file("docker-container"), entry->container.substr(0, 12), id.commit.substr(0, 12));
    info.reset();
  }
  if (!info)
    throw std::runtime_error("commit " + id.commit.substr(0, 12) + " of " + command.compdir +
                             " has no container yet: run `ce-run " + command.compdir + "' first (it makes one, "
                             "even when a step then fails)");
  if (!info->state.running) client.start_container(info->id);
  // What it mounts from the user's paths must be what ce-run would allow.
  std::vector<std::pair<std::string, int>> mounts = {{comp.dir, comp.fd->get()}};
  std::optional<Gfs> gfs;
  for (const auto& b : info->binds)
    if (b.host_path == b.container_path && b.host_path != comp.dir) {
      gfs.emplace(b.host_path);
      gfs->check_allowed(invoker, default_gfs, comp.host.gfs);
      mounts.emplace_back(b.host_path, gfs->fd());
    }
  check_mounts(client, info->id, mounts);

  bool tty = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
  struct NoWarnings : stages::StepObserver {} quiet;
  auto shell = stages::detect_shell(client, info->id, info->image_id, conf.image, quiet);
  // The shell needs its standard input, so its lifeline is a second exec
  // (ce-run-supervise --hold) whose input we hold: when ce-run ends, however
  // it ends, the shell and all it started end too.
  bool supervised = std::any_of(info->binds.begin(), info->binds.end(),
                                [](const docker::Bind& b) { return b.container_path == supervisor_in_container; });
  if (!supervised)
    spdlog::warn("warning: the container {} was made by an older ce-run, without {}: the shell is not stopped if "
                 "ce-run is killed; a run of the computation replaces the container",
                 info->id.substr(0, 12), supervisor_in_container);
  std::string token = random_token();
  docker::ExecSpec spec;
  spec.cmd = command.command.empty() ? std::vector<std::string>{shell == stages::Shell::bash ? "bash" : "sh"}
                                     : command.command;
  if (supervised)
    spec.cmd.insert(spec.cmd.begin(), {supervisor_in_container, "--lifeline", token, "--"});
  spec.env = info->env;
  if (tty) spec.env.push_back("TERM=" + std::string(std::getenv("TERM") ? std::getenv("TERM") : "xterm"));
  spec.working_dir = comp.dir;
  spec.user = "0";
  spec.tty = tty;
  spec.attach_stdin = true;
  auto exec_id = client.create_exec(info->id, spec);
  docker::AttachedExec attached(client.address(), exec_id, tty);
  std::unique_ptr<docker::AttachedExec> lifeline;
  if (supervised) {
    docker::ExecSpec hold;
    hold.cmd = {supervisor_in_container, "--hold", token};
    hold.user = "0";
    hold.attach_stdin = true;
    lifeline = std::make_unique<docker::AttachedExec>(client.address(), client.create_exec(info->id, hold), false);
  }
  if (tty) {
    winsize size{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row > 0) {
      try {
        client.resize_exec(exec_id, size.ws_row, size.ws_col);
      } catch (const std::exception&) {
      }
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  {
    std::unique_ptr<RawTerminal> raw;
    if (tty) raw = std::make_unique<RawTerminal>();
    docker::StreamDemux demux([](docker::StreamKind kind, std::string_view bytes) {
      std::fwrite(bytes.data(), 1, bytes.size(), kind == docker::StreamKind::stderr_stream ? stderr : stdout);
      std::fflush(kind == docker::StreamKind::stderr_stream ? stderr : stdout);
    });
    bool input_open = true;
    char buffer[16384];
    for (;;) {
      pollfd fds[2] = {{attached.fd(), POLLIN, 0}, {STDIN_FILENO, static_cast<short>(input_open ? POLLIN : 0), 0}};
      if (::poll(fds, input_open ? 2 : 1, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        long n = attached.read(buffer, sizeof buffer);
        if (n <= 0) break;
        if (tty) {
          (void)!::write(STDOUT_FILENO, buffer, static_cast<std::size_t>(n));
        } else {
          demux.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
        }
      }
      if (input_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n <= 0) {
          input_open = false;
          attached.close_input();
        } else if (!attached.write(buffer, static_cast<std::size_t>(n))) {
          break;
        }
      }
    }
  }
  return client.inspect_exec(exec_id).exit_code;
}

}  // namespace ce::runner
