// ce-run-supervise: runs inside a container as the main process of an exec,
// and binds the life of everything the exec starts to ce-run's connection.
//
//   ce-run-supervise [--grace SECONDS] -- COMMAND [ARG...]
//       The lifeline is standard input, attached by ce-run and never written
//       to; COMMAND gets /dev/null as its standard input.
//   ce-run-supervise [--grace SECONDS] --lifeline TOKEN -- COMMAND [ARG...]
//       For a command that needs standard input itself (ce-run shell): the
//       lifeline is the connection that a `--hold TOKEN` exec makes to the
//       abstract Unix socket "ce-run-lifeline-TOKEN" (none within 30 s: the
//       command is stopped).
//   ce-run-supervise --hold TOKEN
//       Connects to that socket and holds it until its own standard input
//       closes.
//   ce-run-supervise --lifeline-fd N -- COMMAND [ARG...]
//       The lifeline is descriptor N (a pipe the server below holds).
//   ce-run-supervise --job DIR
//       A fleet job (docs/fleet.md, docker/job_file.h): the whole life of a
//       Swarm job's container. Runs the everytime steps of DIR/.job as root,
//       then the command as its user, their output appended to DIR/.stdout
//       and DIR/.stderr, and writes how they ended to DIR/.end. SIGTERM
//       (the job ended by its submitter) stops the running one's group.
//   ce-run-supervise --serve
//       Many commands through one exec (a task's calls, docker/command_server.h):
//       standard input carries requests, standard output answers, each a
//       frame (docker/serve_frames.h): a 4-byte little-endian length, then
//       the payload.
//         'R' ID(4) ARGC(4) {LEN(4) BYTES}...   run a command as above, under
//                                               a supervisor of its own
//         'K' ID(4)                             stop it (its lifeline closes)
//         'O'|'E' ID(4) BYTES                   its stdout or stderr
//         'X' ID(4) STATUS(4)                   it ended with STATUS
//       The end of standard input stops every command still running, and the
//       server exits once they are gone.
//
// The engine has no call to stop an exec. ce-run stops one by closing its
// side of the exec's standard input; when ce-run dies, even by SIGKILL, the
// kernel closes its connection and the engine closes that input too. Either
// way the supervisor sees the end of its lifeline and stops COMMAND's whole
// tree: SIGTERM, then SIGKILL to whatever is left after the grace period
// (default 5 s). It is a child subreaper, so processes that COMMAND's
// children orphan (a subshell in the background, a double fork) stay its
// descendants and are found too, by their parent links in the container's
// /proc. SIGTERM, SIGINT or SIGHUP to the supervisor itself stops it the
// same way.
//
// When COMMAND ends by itself, the supervisor exits with its status (128+N
// for a signal N), leaving anything COMMAND started in the background to
// run on, as a plain exec would. A COMMAND that cannot be started exits 127
// (not found) or 126 (not executable), as a shell says.
//
// Statically linked, so it runs in any image of the host's architecture,
// busybox and scratch-like ones included; it is bind-mounted read-only into
// each container that ce-run runs commands in.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

#include "docker/job_file.h"
#include "docker/serve_frames.h"

namespace {

using ce::docker::serve::get32;
using ce::docker::serve::put32;
namespace frames = ce::docker::serve;

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: ce-run-supervise [--grace SECONDS] [--lifeline TOKEN] -- COMMAND [ARG...]\n"
               "       ce-run-supervise --hold TOKEN\n"
               "       ce-run-supervise --serve\n");
  std::exit(125);
}

long long now_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<long long>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

sockaddr_un lifeline_address(const char* token, socklen_t& length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // Abstract (leading NUL): nothing on the container's file system, and it
  // vanishes with the socket.
  int n = std::snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "ce-run-lifeline-%s", token);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof address.sun_path - 1) usage();
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + static_cast<std::size_t>(n));
  return address;
}

// Waits until fd's peer is gone: end of file or an error. Data is dropped.
bool lifeline_ended(int fd) {
  char buffer[512];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    return true;
  }
}

int hold(const char* token) {
  socklen_t length = 0;
  sockaddr_un address = lifeline_address(token, length);
  ::fcntl(STDIN_FILENO, F_SETFL, ::fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
  int fd = -1;
  // The command may not listen yet, or may have ended already: try for a
  // while, and give up at once when ce-run is gone or done.
  for (long long deadline = now_ms() + 30000; now_ms() < deadline;) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 125;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) break;
    ::close(fd);
    fd = -1;
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (::poll(&in, 1, 20) > 0 && lifeline_ended(STDIN_FILENO)) return 0;
  }
  if (fd < 0) {
    std::fprintf(stderr, "ce-run-supervise: no command waits on lifeline %s\n", token);
    return 125;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  for (;;) {
    pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) return 125;
    if (p[0].revents && lifeline_ended(STDIN_FILENO)) return 0;  // ce-run is gone or done
    if (p[1].revents && lifeline_ended(fd)) return 0;            // the command ended
  }
}

// Every process below `root` in this PID namespace, through parent links.
std::vector<pid_t> descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> links;  // pid, ppid
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* entry = ::readdir(proc)) {
      char* end = nullptr;
      long pid = std::strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      char path[64], stat[512];
      std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
      int fd = ::open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = ::read(fd, stat, sizeof stat - 1);
      ::close(fd);
      if (n <= 0) continue;
      stat[n] = '\0';
      const char* close = std::strrchr(stat, ')');  // the name may hold anything
      char state = 0;
      long ppid = 0;
      if (!close || std::sscanf(close + 1, " %c %ld", &state, &ppid) != 2) continue;
      links.emplace_back(static_cast<pid_t>(pid), static_cast<pid_t>(ppid));
    }
    ::closedir(proc);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> frontier{root};
  while (!frontier.empty()) {
    pid_t parent = frontier.back();
    frontier.pop_back();
    for (const auto& [pid, ppid] : links)
      if (ppid == parent) {
        out.push_back(pid);
        frontier.push_back(pid);
      }
  }
  return out;
}

void signal_tree(int sig) {
  for (pid_t pid : descendants(::getpid())) ::kill(pid, sig);
}

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

// Reaps every child that has ended; returns whether `main` was one.
bool reap(pid_t main, int& main_status) {
  bool main_ended = false;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return main_ended;
    if (pid == main) {
      main_status = status;
      main_ended = true;
    }
  }
}


bool write_all(int fd, const std::string& data) {
  for (std::size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool send_frame(char kind, std::uint32_t id, const std::string& body) {
  std::string frame;
  put32(frame, static_cast<std::uint32_t>(5 + body.size()));
  frame.push_back(kind);
  put32(frame, id);
  frame += body;
  return write_all(STDOUT_FILENO, frame);
}

struct Served {
  std::uint32_t id;
  pid_t pid;
  int out, err, life;  // -1 once closed
  bool ended = false;
  int status = 0;
};

int serve(const char* self) {
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &handled, nullptr);
  int signals = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<Served> calls;
  std::string input;
  bool input_open = true;
  auto close_fd = [](int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  };
  auto start = [&](std::uint32_t id, std::vector<std::string> args) {
    int out[2], err[2], life[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(life, O_CLOEXEC) != 0) {
      std::string status;
      put32(status, 125);
      send_frame(frames::ended, id, status);
      return;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::sigprocmask(SIG_UNBLOCK, &handled, nullptr);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, STDIN_FILENO);
      int lifeline = ::fcntl(life[0], F_DUPFD, 3);  // without close-on-exec
      std::string fd_text = std::to_string(lifeline);
      std::vector<char*> argv = {const_cast<char*>(self), const_cast<char*>("--lifeline-fd"), fd_text.data(),
                                 const_cast<char*>("--")};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(self, argv.data());
      ::_exit(125);
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(life[0]);
    if (pid < 0) {
      ::close(out[0]);
      ::close(err[0]);
      ::close(life[1]);
      std::string status;
      put32(status, 125);
      send_frame(frames::ended, id, status);
      return;
    }
    calls.push_back({id, pid, out[0], err[0], life[1]});
  };
  for (;;) {
    std::vector<pollfd> fds = {{signals, POLLIN, 0}};
    if (input_open) fds.push_back({STDIN_FILENO, POLLIN, 0});
    for (const auto& c : calls) {
      if (c.out >= 0) fds.push_back({c.out, POLLIN, 0});
      if (c.err >= 0) fds.push_back({c.err, POLLIN, 0});
    }
    if (!input_open && calls.empty()) return 0;
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return 125;
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == STDIN_FILENO) {
        char buffer[65536];
        ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // ce-run is gone or done: stop everything
          input_open = false;
          for (auto& c : calls) close_fd(c.life);
          continue;
        }
        input.append(buffer, static_cast<std::size_t>(n));
        while (input.size() >= 4 && input.size() >= 4 + get32(input, 0)) {
          std::uint32_t length = get32(input, 0);
          std::string frame = input.substr(4, length);
          input.erase(0, 4 + length);
          if (frame.size() < 5) continue;
          std::uint32_t id = get32(frame, 1);
          if (frame[0] == frames::kill) {
            for (auto& c : calls)
              if (c.id == id) close_fd(c.life);
          } else if (frame[0] == frames::run && frame.size() >= 9) {
            std::uint32_t argc = get32(frame, 5);
            std::vector<std::string> args;
            std::size_t at = 9;
            for (std::uint32_t k = 0; k < argc && at + 4 <= frame.size(); ++k) {
              std::uint32_t len = get32(frame, at);
              at += 4;
              args.push_back(frame.substr(at, len));
              at += len;
            }
            if (args.empty() || args.size() != argc) {
              std::string status;
              put32(status, 125);
              send_frame(frames::ended, id, status);
            } else {
              start(id, std::move(args));
            }
          }
        }
      } else if (p.fd != signals) {
        for (auto& c : calls) {
          int* fd = c.out == p.fd ? &c.out : c.err == p.fd ? &c.err : nullptr;
          if (!fd) continue;
          char buffer[65536];
          ssize_t n = ::read(*fd, buffer, sizeof buffer);
          if (n < 0 && errno == EINTR) break;
          if (n <= 0) {
            close_fd(*fd);
          } else if (!send_frame(fd == &c.out ? frames::out : frames::err, c.id,
                                 std::string(buffer, static_cast<std::size_t>(n)))) {
            return 125;  // ce-run cannot be told anything any more
          }
          break;
        }
      }
    }
    signalfd_siginfo info;
    while (::read(signals, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    }
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto& c : calls)
        if (c.pid == pid) {
          c.ended = true;
          c.status = status_code(status);
        }
    }
    // A call is over when it has ended and its output is all sent.
    for (std::size_t k = 0; k < calls.size();) {
      Served& c = calls[k];
      if (c.ended && c.out < 0 && c.err < 0) {
        close_fd(c.life);
        std::string status;
        put32(status, static_cast<std::uint32_t>(c.status));
        if (!send_frame(frames::ended, c.id, status)) return 125;
        calls.erase(calls.begin() + static_cast<std::ptrdiff_t>(k));
      } else {
        ++k;
      }
    }
  }
}

// --job DIR
volatile sig_atomic_t job_child = 0;
void job_forward(int sig) {
  if (job_child > 0) ::kill(-job_child, sig);
}

// A user of the container's /etc/passwd by name (a static program has no
// NSS): its uid and primary gid.
bool user_by_name(const std::string& name, uid_t& uid, gid_t& gid) {
  FILE* passwd = std::fopen("/etc/passwd", "r");
  if (!passwd) return false;
  char line[1024];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, passwd)) {
    std::vector<std::string> fields;
    std::string field;
    for (const char* c = line; *c && *c != '\n'; ++c) {
      if (*c == ':') {
        fields.push_back(field);
        field.clear();
      } else {
        field += *c;
      }
    }
    fields.push_back(field);
    if (fields.size() >= 4 && fields[0] == name) {
      uid = static_cast<uid_t>(std::strtoul(fields[2].c_str(), nullptr, 10));
      gid = static_cast<gid_t>(std::strtoul(fields[3].c_str(), nullptr, 10));
      found = true;
    }
  }
  std::fclose(passwd);
  return found;
}

// Runs argv with stdout and stderr on `out` and `err`, in a process group
// of its own, as `user` when given; returns its status as a shell gives it.
int job_run(const std::vector<std::string>& argv, int out, int err, const std::string* user,
            const std::string& workdir, const std::string& stage) {
  pid_t pid = ::fork();
  if (pid < 0) return 125;
  if (pid == 0) {
    ::setpgid(0, 0);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    if (!stage.empty()) ::setenv("CE_STAGE", stage.c_str(), 1);
    if (user && !user->empty()) {
      unsigned u = 0, g = 0;
      uid_t uid = 0;
      gid_t gid = 0;
      if (std::sscanf(user->c_str(), "%u:%u", &u, &g) == 2) {
        uid = u;
        gid = g;
      } else if (!user_by_name(*user, uid, gid)) {
        std::fprintf(stderr, "ce-run-supervise: no user '%s' in the container's /etc/passwd\n", user->c_str());
        ::_exit(125);
      }
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
        std::fprintf(stderr, "ce-run-supervise: cannot become %s: %s\n", user->c_str(), std::strerror(errno));
        ::_exit(125);
      }
    }
    if (!workdir.empty() && ::chdir(workdir.c_str()) != 0) {
      std::fprintf(stderr, "ce-run-supervise: cannot enter %s: %s\n", workdir.c_str(), std::strerror(errno));
      ::_exit(125);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    int e = errno;
    std::fprintf(stderr, "ce-run-supervise: cannot run %s: %s\n", args[0], std::strerror(e));
    ::_exit(e == ENOENT ? 127 : 126);
  }
  job_child = pid;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  job_child = 0;
  return status_code(status);
}

// A network namespace of this process's own with loopback up (docker.conf
// network = "none" on a fleet, where Swarm has no such network), then
// CAP_SYS_ADMIN and CAP_NET_ADMIN, which the job's container was given for
// this alone, dropped for good: from the bounding set, so that no step or
// command ever has them, and from this process. "" or what failed.
std::string isolate_network() {
  if (::unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq lo {};
  std::strncpy(lo.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &lo) == 0 && (lo.ifr_flags |= IFF_UP, ::ioctl(s, SIOCSIFFLAGS, &lo) == 0);
  int e = errno;
  if (s >= 0) ::close(s);
  if (!up) return std::string("loopback up: ") + std::strerror(e);
  for (int cap : {CAP_SYS_ADMIN, CAP_NET_ADMIN})
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return std::string("PR_CAPBSET_DROP: ") + std::strerror(errno);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return std::string("capget: ") + std::strerror(errno);
  for (int cap : {CAP_SYS_ADMIN, CAP_NET_ADMIN}) {
    auto bit = static_cast<std::uint32_t>(1u << (cap % 32));
    data[cap / 32].effective &= ~bit;
    data[cap / 32].permitted &= ~bit;
    data[cap / 32].inheritable &= ~bit;
  }
  if (::syscall(SYS_capset, &header, data) != 0) return std::string("capset: ") + std::strerror(errno);
  return "";
}

int job(const char* dir_path) {
  namespace job = ce::docker::job;
  int dir = ::open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    std::fprintf(stderr, "ce-run-supervise: cannot open %s: %s\n", dir_path, std::strerror(errno));
    return 125;
  }
  std::string text;
  int fd = ::openat(dir, job::description, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  for (char buffer[65536]; fd >= 0;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  auto d = job::decode(text);
  if (fd < 0 || !d) {
    std::fprintf(stderr, "ce-run-supervise: %s/%s is not a job's description\n", dir_path, job::description);
    return 125;
  }
  ::close(fd);
  auto open_log = [&](const char* name) {
    ::unlinkat(dir, name, 0);
    return ::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  };
  int out = open_log(job::stdout_file), err = open_log(job::stderr_file);
  if (out < 0 || err < 0) {
    std::fprintf(stderr, "ce-run-supervise: cannot write in %s: %s\n", dir_path, std::strerror(errno));
    return 125;
  }
  if (d->no_network) {
    std::string failed = isolate_network();
    if (!failed.empty()) {
      // No .end: the fleet, not the computation, failed this job.
      std::string what = "ce-run-supervise: cannot run without a network (docker.conf network = \"none\"): " +
                         failed + "\n";
      write_all(err, what);
      std::fputs(what.c_str(), stderr);
      return 125;
    }
  }
  struct sigaction forward {};
  forward.sa_handler = job_forward;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &forward, nullptr);
  if (d->shell == "auto") {  // bash where the image has it, as a local call's steps
    d->shell = "sh";
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    for (std::size_t at = 0; at <= dirs.size();) {
      std::size_t colon = dirs.find(':', at);
      if (colon == std::string::npos) colon = dirs.size();
      std::string candidate = dirs.substr(at, colon - at) + "/bash";
      if (colon > at && ::access(candidate.c_str(), X_OK) == 0) {
        d->shell = "bash";
        break;
      }
      at = colon + 1;
    }
  }
  std::string end;
  int code = 0;
  for (std::size_t k = 0; k < d->steps.size() && end.empty(); ++k) {
    code = job_run({d->shell, "-c", d->steps[k].program, d->origin}, out, err, nullptr, {}, d->steps[k].stage);
    if (code != 0) end = "everytime " + std::to_string(k + 1) + " " + std::to_string(code) + "\n";
  }
  if (end.empty()) {
    code = job_run(d->argv, out, err, &d->user, d->workdir, {});
    end = "command " + std::to_string(code) + "\n";
  }
  std::string temp = std::string(job::end_file) + ".tmp";
  ::unlinkat(dir, temp.c_str(), 0);
  int e = ::openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
  if (e < 0 || !write_all(e, end) || ::fsync(e) != 0 || ::close(e) != 0 ||
      ::renameat(dir, temp.c_str(), dir, job::end_file) != 0) {
    std::fprintf(stderr, "ce-run-supervise: cannot write %s/%s: %s\n", dir_path, job::end_file, std::strerror(errno));
    return 125;
  }
  ::fsync(out);
  ::fsync(err);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  long grace_seconds = 5;
  const char* lifeline_token = nullptr;
  int lifeline_fd = -1;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (std::strcmp(argv[i], "--hold") == 0 && i + 1 < argc) return hold(argv[i + 1]);
    if (std::strcmp(argv[i], "--serve") == 0) return serve("/proc/self/exe");
    if (std::strcmp(argv[i], "--job") == 0 && i + 1 < argc) return job(argv[i + 1]);
    if (std::strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
      grace_seconds = std::strtol(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--lifeline") == 0 && i + 1 < argc) {
      lifeline_token = argv[++i];
    } else if (std::strcmp(argv[i], "--lifeline-fd") == 0 && i + 1 < argc) {
      lifeline_fd = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
    } else {
      usage();
    }
  }
  if (i >= argc) usage();

  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, sig);
  sigset_t original;
  ::sigprocmask(SIG_BLOCK, &handled, &original);
  int signals = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  int lifeline = STDIN_FILENO;
  if (lifeline_fd >= 0) {
    ::fcntl(lifeline_fd, F_SETFD, FD_CLOEXEC);
    lifeline = lifeline_fd;
  }
  int listener = -1;
  if (lifeline_token) {
    socklen_t length = 0;
    sockaddr_un address = lifeline_address(lifeline_token, length);
    listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener, 1) != 0) {
      std::fprintf(stderr, "ce-run-supervise: cannot listen on lifeline %s: %s\n", lifeline_token,
                   std::strerror(errno));
      return 125;
    }
    lifeline = -1;  // until the holder connects
  }

  pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "ce-run-supervise: cannot fork: %s\n", std::strerror(errno));
    return 125;
  }
  if (child == 0) {
    ::setpgid(0, 0);
    // On a terminal (ce-run shell), the command's group must be the
    // terminal's foreground, or reading it stops it (SIGTTIN); a background
    // group may make that change only with SIGTTOU blocked.
    if (::isatty(STDIN_FILENO)) {
      sigset_t ttou;
      sigemptyset(&ttou);
      sigaddset(&ttou, SIGTTOU);
      ::sigprocmask(SIG_BLOCK, &ttou, nullptr);
      ::tcsetpgrp(STDIN_FILENO, ::getpid());
    }
    ::sigprocmask(SIG_SETMASK, &original, nullptr);
    if (!lifeline_token) {
      int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, STDIN_FILENO);
      if (null > STDIN_FILENO) ::close(null);
    }
    ::execvp(argv[i], argv + i);
    int error = errno;
    std::fprintf(stderr, "ce-run-supervise: cannot execute %s: %s\n", argv[i], std::strerror(error));
    ::_exit(error == ENOENT ? 127 : 126);
  }
  if (!lifeline_token) ::fcntl(lifeline, F_SETFL, ::fcntl(lifeline, F_GETFL) | O_NONBLOCK);

  int main_status = 0;
  bool stopping = false;
  long long kill_at = 0;
  long long holder_deadline = lifeline_token ? now_ms() + 30000 : 0;
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    ::kill(-child, SIGTERM);
    signal_tree(SIGTERM);
    kill_at = now_ms() + grace_seconds * 1000;
  };
  for (;;) {
    std::vector<pollfd> fds = {{signals, POLLIN, 0}};
    if (lifeline >= 0) fds.push_back({lifeline, POLLIN, 0});
    if (listener >= 0 && lifeline < 0) fds.push_back({listener, POLLIN, 0});
    int timeout = -1;
    long long deadline = stopping ? kill_at : holder_deadline;
    if (deadline > 0) timeout = static_cast<int>(std::max(0LL, deadline - now_ms()));
    if (stopping) timeout = std::min(timeout < 0 ? 100 : timeout, 100);  // watch the tree empty
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;

    signalfd_siginfo info;
    while (::read(signals, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
      if (info.ssi_signo != SIGCHLD) stop();
    bool main_ended = reap(child, main_status);
    if (main_ended && !stopping) return status_code(main_status);
    if (main_ended) child = -child;  // remember it ended; the tree may not have

    for (std::size_t k = 1; k < fds.size(); ++k) {
      if (!fds[k].revents) continue;
      if (fds[k].fd == listener) {
        lifeline = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (lifeline >= 0) holder_deadline = 0;
      } else if (lifeline_ended(fds[k].fd)) {
        ::close(fds[k].fd);
        lifeline = -1;
        listener = -1;  // a lifeline is held once
        stop();
      }
    }
    if (holder_deadline > 0 && now_ms() >= holder_deadline) {
      holder_deadline = 0;
      stop();
    }
    if (stopping) {
      if (descendants(::getpid()).empty()) return child < 0 ? status_code(main_status) : 128 + SIGTERM;
      if (now_ms() >= kill_at) signal_tree(SIGKILL);
    }
  }
  return 125;
}
