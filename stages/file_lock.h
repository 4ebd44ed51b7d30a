// An exclusive advisory lock on a file (flock): held until the FileLock is
// destroyed or its process dies, so a lock left by a killed process never
// blocks anyone.
#pragma once

#include <string>

namespace ce::stages {

class FileLock {
 public:
  // Blocks until the lock is ours. Creates the file (and its directory).
  // Throws std::runtime_error naming the path.
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace ce::stages
