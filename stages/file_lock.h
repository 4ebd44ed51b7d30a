// An exclusive advisory lock on a file (flock): held until the FileLock is
// destroyed or its process dies, so a lock left by a killed process never
// blocks anyone.
//
// The file's content is a note from the holder to the next one (ce-run
// notes the exec it has running, so that the next holder can stop it when
// the holder was killed): read when the lock is taken, replaced by
// set_note(), emptied when the lock is released normally.
#pragma once

#include <string>

#include "docker/cancellation.h"

namespace ce::stages {

enum class Wait { yes, no };

class FileLock {
 public:
  // Wait::yes blocks until the lock is ours; Wait::no gives up at once when
  // another process holds it (then held() is false). Creates the file (and
  // its directory). Throws std::runtime_error naming the path. With a
  // token, the wait ends when it is cancelled: throws docker::Cancelled.
  explicit FileLock(const std::string& path, Wait wait = Wait::yes, const docker::Cancellation* cancel = nullptr);
  // The lock file `name` in the directory `dir`; `shown` names it in errors.
  // Lock files are root's alone (0600, ce-run's user): a note in one is
  // written by a ce-run, never by a user. A symlink is refused, not followed.
  FileLock(int dir, const std::string& name, const std::string& shown, Wait wait = Wait::yes,
           const docker::Cancellation* cancel = nullptr);
  bool held() const { return fd_ >= 0; }
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // What the previous holder left; empty if it released the lock normally.
  const std::string& previous_note() const { return previous_note_; }
  void set_note(const std::string& note);

 private:
  void lock(const std::string& shown, Wait wait, const docker::Cancellation* cancel);
  int fd_ = -1;
  std::string previous_note_;
};

}  // namespace ce::stages
