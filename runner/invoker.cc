#include "runner/invoker.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ce::runner {

namespace {

bool parse_id(const char* text, unsigned long& value) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtoul(text, &end, 10);
  return errno == 0 && *end == '\0' && value < 0xFFFFFFFFUL;
}

// Sends the outcome to the parent: "+" with a descriptor, or "-" and a message.
void send_outcome(int socket, int fd, const std::string& error) {
  std::string message = error.empty() ? "+" : "-" + error;
  struct iovec iov {};
  iov.iov_base = message.data();
  iov.iov_len = message.size();
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (error.empty() && fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  while (::sendmsg(socket, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// The groups login would give `user`.
std::vector<gid_t> groups_of(const char* user, gid_t gid) {
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(user, gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    ::getgrouplist(user, gid, groups.data(), &count);
  }
  groups.resize(static_cast<std::size_t>(count));
  return groups;
}

}  // namespace

Invoker invoking_user() {
  Invoker who;
  who.uid = ::getuid();
  who.gid = ::getgid();
  unsigned long uid = 0, gid = 0;
  if (who.uid == 0 && parse_id(std::getenv("SUDO_UID"), uid) && parse_id(std::getenv("SUDO_GID"), gid)) {
    who.uid = static_cast<uid_t>(uid);
    who.gid = static_cast<gid_t>(gid);
  }
  const char* config = std::getenv("DOCKER_CONFIG");
  if (config && *config) {
    who.docker_config = config;
  } else if (struct passwd* pw = ::getpwuid(who.uid); pw && pw->pw_dir && *pw->pw_dir) {
    who.docker_config = std::string(pw->pw_dir) + "/.docker";
  }
  if (who.root()) return who;
  // A uid without a name (no passwd entry) has its primary group only.
  who.groups = {who.gid};
  if (struct passwd* pw = ::getpwuid(who.uid)) who.groups = groups_of(pw->pw_name, who.gid);
  return who;
}

Invoker user_named(const std::string& name) {
  std::vector<char> buffer(16384);
  struct passwd entry {};
  struct passwd* pw = nullptr;
  int error = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &pw);
  if (pw == nullptr)
    throw std::runtime_error("no user '" + name + "' on this machine" +
                             (error != 0 ? std::string(" (") + std::strerror(error) + ")" : std::string()));
  Invoker who;
  who.uid = pw->pw_uid;
  who.gid = pw->pw_gid;
  if (pw->pw_dir && *pw->pw_dir) who.docker_config = std::string(pw->pw_dir) + "/.docker";
  who.groups = groups_of(pw->pw_name, pw->pw_gid);
  return who;
}

stages::Fd as_invoker(const Invoker& invoker, const std::function<int()>& work) {
  if (invoker.root() || ::geteuid() != 0) {
    // Root's own call, or ce-run not running as root at all: the rights of
    // this process are the invoker's.
    return stages::Fd(work());
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error(std::string("cannot make a socket pair: ") + std::strerror(errno));
  pid_t child = ::fork();
  if (child < 0) {
    int error = errno;
    ::close(pair[0]);
    ::close(pair[1]);
    throw std::runtime_error(std::string("cannot fork: ") + std::strerror(error));
  }
  if (child == 0) {
    ::close(pair[0]);
    // Groups first: they need root's rights. Then gid, then uid, and check
    // that root's rights are really gone.
    if (::setgroups(invoker.groups.size(), invoker.groups.data()) != 0 || ::setgid(invoker.gid) != 0 ||
        ::setuid(invoker.uid) != 0 || ::getuid() != invoker.uid || ::geteuid() != invoker.uid ||
        ::setuid(0) == 0) {
      send_outcome(pair[1], -1, std::string("cannot take on the rights of uid ") + std::to_string(invoker.uid));
      ::_exit(1);
    }
    // The child holds a copy of root's memory: the user must not read it.
    ::prctl(PR_SET_DUMPABLE, 0);
    try {
      int fd = work();
      send_outcome(pair[1], fd, {});
    } catch (const std::exception& e) {
      send_outcome(pair[1], -1, e.what());
    } catch (...) {
      send_outcome(pair[1], -1, "failed");
    }
    ::_exit(0);
  }
  ::close(pair[1]);
  std::string message;
  int received = -1;
  for (;;) {
    char buffer[4096];
    struct iovec iov {};
    iov.iov_base = buffer;
    iov.iov_len = sizeof buffer;
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(pair[0], &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && received < 0)
        std::memcpy(&received, CMSG_DATA(c), sizeof(int));
    message.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pair[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  stages::Fd fd(received);
  if (message.empty()) throw std::runtime_error("the process acting with the user's rights died");
  if (message[0] != '+') throw std::runtime_error(message.substr(1));
  return fd;
}

stages::Fd open_as_invoker(const Invoker& invoker, const std::string& path, int flags) {
  return as_invoker(invoker, [&] {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::strerror(errno));
    return fd;
  });
}

}  // namespace ce::runner
