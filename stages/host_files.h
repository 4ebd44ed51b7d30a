// Files on the host that ce-run, as root, reads, writes or removes in places
// a user or a container can also reach (docs/security.md). Every function
// works on directory descriptors and never follows a symbolic link: a path
// is walked one name at a time (openat with O_NOFOLLOW | O_DIRECTORY), each
// directory checked for its owner, so a symlink or a directory swapped in
// behind ce-run's back is refused instead of followed.
//
// Errors are HostFileError naming the path as `shown` gives it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <vector>

namespace ce::stages {

class HostFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

enum class Create { no, yes };

// Who must own a directory ce-run walks through: std::nullopt accepts any.
using Owner = std::optional<uid_t>;

// Opens a directory by absolute path for use as the root of the functions
// below. The path is resolved by the kernel as given (symlinks in it are
// followed: it is a place the caller chose and checked); the directory
// itself is then checked: owned by `owner`, not writable by others unless
// sticky. Throws HostFileError.
Fd open_directory(const std::string& path, Owner owner = std::nullopt);

// Opens `relative` ("a/b/c") below the directory `dir`, one name at a time,
// never following a symlink; with Create::yes, makes missing directories
// with `mode` (exact, whatever the umask). Each directory reached must be
// owned by `owner` and not writable by group or others beyond `mode`.
// With Create::no, a missing directory gives an empty Fd. `shown` is how
// `dir` is named in errors.
Fd open_directory_at(int dir, const std::string& relative, Create create, mode_t mode, Owner owner,
                     const std::string& shown);

// Opens a file in `dir` for reading without following a symlink; it must be a
// regular file. An empty Fd when it does not exist. `st`, when given,
// receives the file's status (the fstat it was checked with).
Fd open_regular_at(int dir, const std::string& name, const std::string& shown, struct stat* st = nullptr);

// Reads all of a regular file opened above (at most `limit` bytes, else
// throws).
std::string read_all(int fd, const std::string& shown, std::size_t limit = std::size_t{64} << 20);

// The one atomic writer: `text` goes to a fresh temporary file in `dir`
// (random name, O_CREAT | O_EXCL | O_NOFOLLOW, `mode` exactly), is synced,
// then renamed over `name` (a symlink there is replaced, not followed), and
// `dir` is synced so that the rename survives a crash.
void write_atomically_at(int dir, const std::string& name, std::string_view text, mode_t mode,
                         const std::string& shown);
// The same for a path, its directory opened as the kernel resolves it: for
// files written with the invoking user's rights (invoker.h), where the
// kernel's permission checks are the protection.
void write_atomically(const std::string& path, std::string_view text, mode_t mode);

// A fresh temporary file in `dir` (O_EXCL, random name, `mode`): its
// descriptor and name.
struct TempFile {
  Fd fd;
  std::string name;
};
TempFile make_temp_at(int dir, const std::string& prefix, mode_t mode, const std::string& shown);

// Removes `name` in `dir` and, if it is a directory, everything in it,
// working on descriptors: a symlink is removed, never followed, and a
// directory swapped for a symlink while the walk goes on is not entered.
// Missing is fine. Throws HostFileError on other failures.
void remove_tree_at(int dir, const std::string& name, const std::string& shown);

// The names in a directory (not "." or ".."); empty when it cannot be read.
std::vector<std::string> list_directory(int dir);

// Copies what `from` holds (read from offset 0) into `to`, calling `chunk` on
// each block written; returns 0 or the errno of the failure.
int copy_fd(int from, int to, const std::function<void(const char*, std::size_t)>& chunk = {});

// A random 16-hex-digit word, for temporary names.
std::string random_word();

// This machine's name (gethostname).
std::string host_name();
// The time now, UTC, as "2026-12-02T09:30:00Z".
std::string utc_now();

}  // namespace ce::stages
