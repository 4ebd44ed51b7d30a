#include "stages/file_lock.h"

#include <boost/filesystem.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <unistd.h>

namespace ce::stages {

FileLock::FileLock(const std::string& path, Wait wait, const docker::Cancellation* cancel) {
  boost::system::error_code ec;
  boost::filesystem::create_directories(boost::filesystem::path(path).parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open the lock file " + path + ": " + std::strerror(errno));
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
