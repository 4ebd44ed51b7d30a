#include "stages/host_files.h"

#include <boost/filesystem/path.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ce::stages {

namespace {

std::string join(const std::string& shown, const std::string& name) {
  if (shown.empty()) return name;
  return shown.back() == '/' ? shown + name : shown + "/" + name;
}

[[noreturn]] void fail(const std::string& what, int error) {
  throw HostFileError(what + ": " + std::strerror(error));
}

std::string describe_owner(uid_t uid) { return "uid " + std::to_string(uid); }

// Checks a directory reached on the way: its owner, and that nobody else
// may write in it (beyond what `mode` grants, or a sticky directory's).
void check_directory(const struct stat& st, Owner owner, mode_t mode, const std::string& shown) {
  if (owner && st.st_uid != *owner)
    throw HostFileError(shown + " is owned by " + describe_owner(st.st_uid) + ", not " + describe_owner(*owner) +
                        "; ce-run makes these directories itself and refuses one made by anybody else: "
                        "remove it, or ask the administrator to");
  mode_t foreign_write = st.st_mode & 022 & ~mode;
  if (foreign_write != 0 && (st.st_mode & S_ISVTX) == 0)
    throw HostFileError(shown + " may be written by " + ((st.st_mode & 002) ? "anybody" : "its group") +
                        "; ce-run refuses a directory others can change under it: chmod go-w it");
}

std::vector<std::string> components(const std::string& relative, const std::string& shown) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= relative.size()) {
    std::size_t slash = relative.find('/', start);
    std::string part = relative.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") throw HostFileError(join(shown, relative) + ": '..' is not allowed here");
    if (!part.empty() && part != ".") parts.push_back(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

void write_all(int fd, std::string_view text, const std::string& shown) {
  const char* data = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write " + shown, n < 0 ? errno : EIO);
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void remove_tree(int dir, const std::string& name, const std::string& shown, int depth) {
  // A tree deeper than this was made to exhaust descriptors or the stack.
  constexpr int max_depth = 400;
  for (int attempt = 0;; ++attempt) {
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      fail("cannot remove " + shown, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
      if (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) return;
      if (errno == EISDIR && attempt < 3) continue;  // swapped for a directory meanwhile
      fail("cannot remove " + shown, errno);
    }
    if (depth >= max_depth) throw HostFileError("cannot remove " + shown + ": it is nested too deep");
    Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) {
      if (errno == ENOENT) return;
      // Swapped for a symlink or a file since fstatat: remove that instead.
      if ((errno == ELOOP || errno == ENOTDIR) && attempt < 3) continue;
      fail("cannot remove " + shown, errno);
    }
    for (const auto& entry : list_directory(sub.get())) remove_tree(sub.get(), entry, join(shown, entry), depth + 1);
    if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return;
    // Something was added meanwhile (a process still writing), or the name
    // now holds something else: look again.
    if ((errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) && attempt < 3) continue;
    fail("cannot remove " + shown, errno);
  }
}

}  // namespace

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string random_word() {
  unsigned char bytes[8];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot get random bytes", n < 0 ? errno : EIO);
    got += static_cast<std::size_t>(n);
  }
  char text[17];
  for (std::size_t i = 0; i < sizeof bytes; ++i) std::snprintf(text + 2 * i, 3, "%02x", bytes[i]);
  return text;
}

Fd open_directory(const std::string& path, Owner owner) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) fail("cannot open the directory " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail("cannot inspect " + path, errno);
  check_directory(st, owner, 0755, path);
  return fd;
}

Fd open_directory_at(int dir, const std::string& relative, Create create, mode_t mode, Owner owner,
                     const std::string& shown) {
  Fd current(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (!current) fail("cannot open " + shown, errno);
  std::string at = shown;
  for (const auto& part : components(relative, shown)) {
    at = join(at, part);
    Fd next(::openat(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next && errno == ENOENT && create == Create::yes) {
      if (::mkdirat(current.get(), part.c_str(), mode) != 0 && errno != EEXIST) fail("cannot make " + at, errno);
      next.reset(::openat(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      struct stat made {};
      // mkdirat applied the umask; give the mode asked for, to a directory of ours.
      if (next && ::fstat(next.get(), &made) == 0 && made.st_uid == ::geteuid() && (made.st_mode & 07777) != mode)
        ::fchmod(next.get(), mode);
    }
    if (!next && errno == ENOENT && create == Create::no) return {};
    if (!next) {
      if (errno == ELOOP || errno == ENOTDIR)
        throw HostFileError(at + " is a symbolic link or not a directory; ce-run never follows a link there: "
                                 "remove it");
      fail("cannot open " + at, errno);
    }
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) fail("cannot inspect " + at, errno);
    check_directory(st, owner, mode, at);
    current = std::move(next);
  }
  return current;
}

Fd open_regular_at(int dir, const std::string& name, const std::string& shown, struct stat* status) {
  // O_NONBLOCK: a FIFO must not block the open; it is refused below.
  Fd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return {};
    if (errno == ELOOP)
      throw HostFileError(shown + " is a symbolic link; ce-run reads only regular files there and never "
                                  "follows a link");
    fail("cannot read " + shown, errno);
  }
  struct stat own {};
  struct stat& st = status ? *status : own;
  if (::fstat(fd.get(), &st) != 0) fail("cannot inspect " + shown, errno);
  if (!S_ISREG(st.st_mode)) throw HostFileError(shown + " is not a regular file");
  // O_NONBLOCK stays: it changes nothing for a regular file's reads.
  return fd;
}

std::string read_all(int fd, const std::string& shown, std::size_t limit) {
  std::string text;
  char buffer[1 << 16];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read " + shown, errno);
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    offset += n;
    if (text.size() > limit)
      throw HostFileError(shown + " is larger than " + std::to_string(limit >> 20) + " MiB; that is not such a file");
  }
  return text;
}

TempFile make_temp_at(int dir, const std::string& prefix, mode_t mode, const std::string& shown) {
  for (int attempt = 0;; ++attempt) {
    std::string name = prefix + random_word();
    Fd fd(::openat(dir, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (fd) {
      ::fchmod(fd.get(), mode);  // whatever the umask
      return {std::move(fd), name};
    }
    if (errno != EEXIST || attempt >= 10) fail("cannot make a temporary file in " + shown, errno);
  }
}

void write_atomically_at(int dir, const std::string& name, std::string_view text, mode_t mode,
                         const std::string& shown) {
  // The name first: patterns that ignore a file (git's exclude of
  // docker-container*) ignore its temporary files too.
  auto temp = make_temp_at(dir, name + ".tmp.", mode, shown);
  try {
    write_all(temp.fd.get(), text, join(shown, name));
    if (::fsync(temp.fd.get()) != 0) fail("cannot write " + join(shown, name), errno);
    if (::close(temp.fd.release()) != 0) fail("cannot write " + join(shown, name), errno);
    if (::renameat(dir, temp.name.c_str(), dir, name.c_str()) != 0) fail("cannot replace " + join(shown, name), errno);
  } catch (...) {
    ::unlinkat(dir, temp.name.c_str(), 0);
    throw;
  }
  // The rename is an entry of the directory: until the directory is synced
  // a crash may bring back the old file (or none). EINVAL: a file system
  // that cannot sync a directory, where there is nothing more to do.
  if (::fsync(dir) != 0 && errno != EINVAL) fail("cannot write " + join(shown, name), errno);
}

void write_atomically(const std::string& path, std::string_view text, mode_t mode) {
  boost::filesystem::path p(path);
  std::string parent = p.parent_path().empty() ? "." : p.parent_path().string();
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail("cannot write " + path, errno);
  write_atomically_at(dir.get(), p.filename().string(), text, mode, parent);
}

void remove_tree_at(int dir, const std::string& name, const std::string& shown) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    throw HostFileError("cannot remove " + shown + ": not a name in its directory");
  remove_tree(dir, name, shown, 0);
}

std::vector<std::string> list_directory(int dir) {
  std::vector<std::string> names;
  int listing = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  DIR* d = listing >= 0 ? ::fdopendir(listing) : nullptr;
  if (d == nullptr) {
    if (listing >= 0) ::close(listing);
    return names;
  }
  ::rewinddir(d);
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

int copy_fd(int from, int to, const std::function<void(const char*, std::size_t)>& chunk) {
  char buffer[1 << 16];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(from, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    offset += n;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(to, buffer + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return w < 0 ? errno : EIO;
      done += w;
    }
    if (chunk) chunk(buffer, static_cast<std::size_t>(n));
  }
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm parts{};
  ::gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

}  // namespace ce::stages
