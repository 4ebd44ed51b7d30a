#include "stages/file_lock.h"

#include <boost/filesystem.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ce::stages {

FileLock::FileLock(const std::string& path, Wait wait, const docker::Cancellation* cancel) {
  boost::filesystem::path p(path);
  boost::system::error_code ec;
  boost::filesystem::create_directories(p.parent_path(), ec);
  int dir = ::open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) throw std::runtime_error("cannot open the lock file " + path + ": " + std::strerror(errno));
  fd_ = ::openat(dir, p.filename().c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  ::close(dir);
  lock(path, wait, cancel);
}

FileLock::FileLock(int dir, const std::string& name, const std::string& shown, Wait wait,
                   const docker::Cancellation* cancel) {
  fd_ = ::openat(dir, name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  lock(shown, wait, cancel);
}

void FileLock::lock(const std::string& path, Wait wait, const docker::Cancellation* cancel) {
  if (fd_ < 0)
    throw std::runtime_error("cannot open the lock file " + path + ": " + std::strerror(errno) +
                             (errno == ELOOP ? " (it is a symbolic link; remove it)" : ""));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("the lock file " + path + " is not a file of ce-run's (owner uid " +
                             std::to_string(st.st_uid) + "); remove it");
  }
  if ((st.st_mode & 07777) != 0600) ::fchmod(fd_, 0600);  // made by an older ce-run
  // flock cannot wait on a token: with one, try and sleep on the token
  // between tries, 1 ms at first and at most 50 ms, so a lock given up is
  // taken soon and a cancellation ends the wait as soon.
  bool blocking = wait == Wait::yes && cancel == nullptr;
  auto pause = std::chrono::milliseconds(1);
  while (::flock(fd_, blocking ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    int error = errno;
    if (error == EWOULDBLOCK && wait == Wait::yes && cancel != nullptr) {
      if (!cancel->wait_for(pause)) {
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
        continue;
      }
      ::close(fd_);
      fd_ = -1;
      throw docker::Cancelled();
    }
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK && wait == Wait::no) return;
    throw std::runtime_error("cannot lock " + path + ": " + std::strerror(error));
  }
  char buffer[512];
  ssize_t n = ::pread(fd_, buffer, sizeof buffer, 0);
  if (n > 0) previous_note_.assign(buffer, static_cast<std::size_t>(n));
}

void FileLock::set_note(const std::string& note) {
  if (fd_ < 0) return;
  // Best effort: a note that cannot be written only costs the next holder
  // the clean-up it enables.
  if (::ftruncate(fd_, 0) == 0 && !note.empty()) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd_, note.data(), note.size(), 0);
  }
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  set_note({});
  ::close(fd_);  // closing releases the lock
}

}  // namespace ce::stages
