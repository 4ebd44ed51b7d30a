#include "runner/gfs.h"

#include "stages/stage_key.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA1Engine.h>
#include <Poco/SHA2Engine.h>

#include <boost/filesystem.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <climits>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ce::runner {

namespace fs = boost::filesystem;
using stages::Create;
using stages::Fd;

namespace {

const char* const record_signature = "ce-run call record 1";

// Who owns every directory and file below the GFS: ce-run's own user.
uid_t owner() {
  static const uid_t euid = ::geteuid();
  return euid;
}

template <typename Engine>
std::string hash_fd(int fd, Engine& engine, const std::string& shown) {
  char buffer[1 << 16];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("cannot read " + shown + ": " + std::strerror(errno));
    if (n == 0) break;
    offset += n;
    engine.update(buffer, static_cast<unsigned>(n));
  }
  return Poco::DigestEngine::digestToHex(engine.digest());
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// A file of a kernel pseudo file system (/proc, /sys, ...): it looks like a
// regular file but is the kernel's or another process's state.
bool on_pseudo_file_system(int fd) {
  struct statfs info {};
  if (::fstatfs(fd, &info) != 0) return true;
  switch (static_cast<unsigned long>(info.f_type)) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEBUGFS_MAGIC: case SECURITYFS_MAGIC: case TRACEFS_MAGIC:
    case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC: case BPF_FS_MAGIC: case EFIVARFS_MAGIC:
      return true;
    default:
      return false;
  }
}

// The layout (gfs.h), relative to GFSDIR: the one place that spells it.
std::string computation_dir(const std::string& name) { return "c_" + name; }  // c_NAME
std::string call_dir_of(const std::string& name, const std::string& cid12) {  // c_NAME/CID12
  return computation_dir(name) + "/" + cid12;
}
std::string number(std::size_t k) {  // KK, in a call's directory and in its staging directory
  char text[24];
  std::snprintf(text, sizeof text, "%02zu", k);
  return text;
}
const char* const records = "done";  // c_NAME/CID12/done/INS
const char* const locks = ".locks";  // c_NAME/CID12/.locks/INS
const char* const logs = "logs";     // c_NAME/CID12/logs/INS.stdout, INS.stderr
std::string log_name(const std::string& ins, LogStream stream) {
  return ins + (stream == LogStream::out ? ".stdout" : ".stderr");
}
std::string stored_input_dir(const std::string& sha1) { return "tinputs/" + sha1.substr(0, 2); }  // tinputs/H2
std::string stored_input_name(const std::string& sha1) { return sha1.substr(2, 10); }             // H10
std::string stored_input(const std::string& sha1) { return stored_input_dir(sha1) + "/" + stored_input_name(sha1); }

// INS: CompEval's IN0_IN1_... while it fits a file name with room for
// ce-run's suffixes (".stdout"), else "sha256-" and 40 hex digits of it
// (a call of more than 18 inputs; its record still names every input).
constexpr std::size_t longest_ins = 240;
std::string ins_name(const std::vector<std::string>& sha1_12s) {
  std::string ins;
  for (const auto& s : sha1_12s) ins += (ins.empty() ? "" : "_") + s;
  if (ins.empty()) return "none";
  if (ins.size() > longest_ins) return "sha256-" + stages::sha256_hex(ins).substr(0, 40);
  return ins;
}

std::string space_hint(int error, const std::string& where) {
  return error == ENOSPC || error == EDQUOT ? "; free space in " + where + " and run again" : std::string();
}

}  // namespace

std::optional<std::uint64_t> full_file_system(const std::string& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) return std::nullopt;
  std::uint64_t available = static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
  if (info.f_bavail == 0 || info.f_bfree == 0) return available;
  return std::nullopt;
}

std::string sha1_fd(int fd, const std::string& shown) {
  Poco::SHA1Engine engine;
  return hash_fd(fd, engine, shown);
}

std::string sha256_fd(int fd, const std::string& shown) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  return hash_fd(fd, engine, shown);
}

std::string sha1_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  return sha1_fd(fd.get(), path);
}

std::string arity_message(const std::vector<std::string>& names, std::size_t given) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return "expected " + std::to_string(names.size()) + " input" + (names.size() == 1 ? "" : "s") +
         (list.empty() ? "" : " (" + list + ")") + ", got " + std::to_string(given);
}

std::optional<CallContract> read_contract(int compdir, const std::string& compdir_path, const std::string& shown) {
  auto at = [&](const std::string& name) { return (fs::path(shown) / name).lexically_normal().string(); };
  // A contract file: a regular file of the repository, never a link.
  // (The exec is only named: the caller says what is wrong with it.)
  auto pick = [&](const char* plain, const char* long_name, bool exec = false) -> std::string {
    for (const char* name : {plain, long_name}) {
      struct stat st {};
      if (::fstatat(compdir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (exec) return name;
      if (S_ISLNK(st.st_mode))
        throw std::runtime_error(at(name) + " is a symbolic link; ce-run reads only regular files of the "
                                            "repository and never follows a link there: commit the file itself");
      if (!S_ISREG(st.st_mode)) throw std::runtime_error(at(name) + " is not a regular file");
      return name;
    }
    return {};
  };
  auto read = [&](const std::string& name) {
    Fd fd = stages::open_regular_at(compdir, name, at(name));
    if (!fd) throw std::runtime_error("cannot read " + at(name));
    return lines_of(stages::read_all(fd.get(), at(name), std::size_t{1} << 20));
  };
  std::string outputs = pick("outputs", "compeval-outputs");
  if (outputs.empty()) return std::nullopt;
  CallContract contract;
  contract.outputs = read(outputs);
  if (contract.outputs.empty())
    throw std::runtime_error(at(outputs) + " names no output; write one symbolic name per line");
  std::string inputs = pick("inputs", "compeval-inputs");
  if (!inputs.empty()) contract.inputs = read(inputs);
  std::string exec = pick("exec", "compeval-exec", true);
  contract.exec = (fs::path(compdir_path) / (exec.empty() ? "exec" : exec)).string();
  return contract;
}

Gfs::Gfs(const std::string& path)
    : path_(path), fd_(std::make_shared<Fd>(stages::open_directory(path, std::nullopt))),
      found_(std::make_shared<Found>()) {}

void Gfs::check_allowed(const Invoker& invoker, const std::string& default_path,
                        const std::vector<std::string>& allowed) const {
  if (invoker.root()) return;
  struct stat st {};
  if (::fstat(fd(), &st) != 0) throw std::runtime_error("cannot inspect the GFS " + path_);
  if (st.st_uid == invoker.uid) return;  // a directory of the user's own
  // Where the descriptor really is, whatever the path led to.
  char real[PATH_MAX + 1] = {};
  std::string link = "/proc/self/fd/" + std::to_string(fd());
  ssize_t n = ::readlink(link.c_str(), real, PATH_MAX);
  std::string where = n > 0 ? std::string(real, static_cast<std::size_t>(n)) : std::string();
  auto same = [&](const std::string& p) {
    boost::system::error_code ec;
    auto canonical = fs::canonical(p, ec);
    return !ec && canonical.string() == where;
  };
  if (st.st_uid == owner() && (same(default_path) || std::any_of(allowed.begin(), allowed.end(), same))) return;
  throw std::runtime_error("the global file storage " + path_ + " is not one you may use: it belongs to uid " +
                           std::to_string(st.st_uid) + ", not to you, and it is neither the default (" +
                           default_path + ") nor one the administrator allows (gfs in /etc/ce-run/host.conf); "
                           "use a directory of your own (--gfs DIR), or ask the administrator");
}

struct Gfs::Found {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const Fd>> dirs;
  // SHA-1s of filed files, by relative path, with the status they had.
  struct Hashed {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec ctime;
    std::string sha1;
  };
  std::map<std::string, Hashed> sha1s;
};

std::optional<std::string> Gfs::known_sha1(const std::string& relative, const struct stat& st) const {
  std::lock_guard<std::mutex> lock(found_->mutex);
  auto it = found_->sha1s.find(relative);
  if (it == found_->sha1s.end()) return std::nullopt;
  const auto& h = it->second;
  if (h.dev != st.st_dev || h.ino != st.st_ino || h.size != st.st_size || h.ctime.tv_sec != st.st_ctim.tv_sec ||
      h.ctime.tv_nsec != st.st_ctim.tv_nsec)
    return std::nullopt;
  return h.sha1;
}

void Gfs::remember_sha1(const std::string& relative, const struct stat& st, const std::string& sha1) const {
  std::lock_guard<std::mutex> lock(found_->mutex);
  if (found_->sha1s.size() < 65536)
    found_->sha1s[relative] = {st.st_dev, st.st_ino, st.st_size, st.st_ctim, sha1};
}

Fd Gfs::dir(const std::string& relative, Create create) const {
  if (create == Create::yes) return stages::open_directory_at(fd(), relative, create, 0755, owner(), path_);
  auto found = find(relative);
  if (!found) return {};
  int copy = ::fcntl(found->get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw std::runtime_error("cannot open " + path_ + "/" + relative + ": " + std::strerror(errno));
  return Fd(copy);
}

std::shared_ptr<const Fd> Gfs::find(const std::string& relative) const {
  {
    std::lock_guard<std::mutex> lock(found_->mutex);
    auto it = found_->dirs.find(relative);
    if (it != found_->dirs.end()) return it->second;
  }
  Fd dir = stages::open_directory_at(fd(), relative, Create::no, 0755, owner(), path_);
  if (!dir) return nullptr;
  auto shared = std::make_shared<const Fd>(std::move(dir));
  std::lock_guard<std::mutex> lock(found_->mutex);
  if (found_->dirs.size() < 4096) found_->dirs.emplace(relative, shared);
  return shared;
}

std::string format_record(const CallRecord& r) {
  std::ostringstream out;
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", r.seconds);
  out << record_signature << "\n"
      << "exit_code " << r.exit_code << "\n"
      << "start " << r.start << "\n"
      << "end " << r.end << "\n"
      << "seconds " << seconds << "\n"
      << "computation_id " << r.computation_id << "\n"
      << "commit " << r.commit << "\n"
      << "tree " << r.tree << "\n"
      << "dirty " << (r.dirty ? 1 : 0) << "\n"
      << "base_image_id " << r.base_image_id << "\n"
      << "final_key " << r.final_key << "\n"
      << "host " << r.host << "\n";
  if (!r.compdir.empty()) out << "compdir " << r.compdir << "\n";
  for (const auto& [name, sha1] : r.inputs) out << "input " << sha1 << " " << name << "\n";
  for (const auto& o : r.outputs) out << "output " << o.sha256 << " " << o.size << " " << o.name << "\n";
  out << "end-of-record\n";
  return out.str();
}

std::optional<CallRecord> parse_record(const std::string& text, std::string* problem) {
  auto fail = [&](const std::string& why) -> std::optional<CallRecord> {
    if (problem) *problem = why;
    return std::nullopt;
  };
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != record_signature) return fail("the record is not a ce-run call record 1");
  CallRecord r;
  bool complete = false;
  while (std::getline(in, line)) {
    if (line == "end-of-record") {
      complete = true;
      break;
    }
    auto space = line.find(' ');
    if (space == std::string::npos) return fail("the record is damaged");
    std::string key = line.substr(0, space), value = line.substr(space + 1);
    try {
      if (key == "exit_code") r.exit_code = std::stoi(value);
      else if (key == "start") r.start = value;
      else if (key == "end") r.end = value;
      else if (key == "seconds") r.seconds = std::stod(value);
      else if (key == "computation_id") r.computation_id = value;
      else if (key == "commit") r.commit = value;
      else if (key == "tree") r.tree = value;
      else if (key == "dirty") r.dirty = value == "1";
      else if (key == "base_image_id") r.base_image_id = value;
      else if (key == "final_key") r.final_key = value;
      else if (key == "host") r.host = value;
      else if (key == "compdir") r.compdir = value;
      else if (key == "input") {
        auto sep = value.find(' ');
        if (sep != 40) return fail("the record is damaged");
        r.inputs.emplace_back(value.substr(sep + 1), value.substr(0, sep));
      } else if (key == "output") {
        std::istringstream fields(value);
        OutputRecord o;
        fields >> o.sha256 >> o.size;
        std::getline(fields, o.name);
        if (o.sha256.size() != 64 || o.name.empty()) return fail("the record is damaged");
        o.name.erase(0, 1);
        r.outputs.push_back(o);
      } else {
        return fail("the record has an unknown line");
      }
    } catch (const std::exception&) {
      return fail("the record is damaged");
    }
  }
  if (!complete) return fail("the record was cut short");
  return r;
}

InputFile open_input(const Gfs& gfs, const std::string& name, const std::string& given, const Invoker& invoker,
                     const std::string& which) {
  InputFile f;
  f.name = name;
  fs::path as_given(given);
  f.path = (as_given.is_absolute() ? as_given : fs::absolute(as_given)).lexically_normal().string();
  // A file ce-run filed in this GFS (c_NAME/..., tinputs/...): its own, read
  // through the GFS's descriptors and passed to the command where it is.
  fs::path below = fs::path(f.path).lexically_relative(gfs.path());
  if (!below.empty() && (below.begin()->string().rfind("c_", 0) == 0 || *below.begin() == "tinputs") &&
      std::none_of(below.begin(), below.end(), [](const fs::path& p) { return p == ".." || p == "."; })) {
    auto dir = gfs.find(below.parent_path().string());
    std::string file = below.filename().string();
    f.stored = f.path;
    f.in_gfs = true;
    // Filed files do not change: one hashed before in this Gfs, with the
    // same status, is not read again (a task's input feeds many calls).
    struct stat st {};
    if (dir && ::fstatat(dir->get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == owner())
      if (auto known = gfs.known_sha1(below.string(), st)) {
        f.sha1 = *known;
        return f;
      }
    Fd fd = dir ? stages::open_regular_at(dir->get(), file, f.path, &st) : Fd();
    if (!fd || st.st_uid != owner())
      throw std::runtime_error(which + " is not a file that ce-run filed in the GFS");
    f.sha1 = sha1_fd(fd.get(), f.path);
    gfs.remember_sha1(below.string(), st, f.sha1);
    f.fd = std::make_shared<Fd>(std::move(fd));
    return f;
  }
  // Opened as the user would open it: root's rights never read an input.
  Fd fd;
  try {
    fd = open_as_invoker(invoker, f.path, O_RDONLY | O_NONBLOCK);
  } catch (const std::exception& e) {
    throw std::runtime_error(which + " is not a readable regular file (" + e.what() + ")");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw std::runtime_error(which + " is not a readable regular file (" +
                             (S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket") + ")");
  if (on_pseudo_file_system(fd.get()))
    throw std::runtime_error(which + " is not a readable regular file (a file of the kernel's /proc or /sys, "
                                     "not of a disk)");
  // (O_NONBLOCK, which kept a FIFO from blocking the open, changes nothing
  // for a regular file's reads.)
  f.sha1 = sha1_fd(fd.get(), f.path);
  f.fd = std::make_shared<Fd>(std::move(fd));
  f.stored = (fs::path(gfs.path()) / stored_input(f.sha1)).string();
  return f;
}

bool input_stored(const Gfs& gfs, const InputFile& f) {
  if (f.in_gfs) return true;
  auto dir = gfs.find(stored_input_dir(f.sha1));
  struct stat st {};
  return dir && ::fstatat(dir->get(), stored_input_name(f.sha1).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG(st.st_mode) && st.st_uid == owner();
}

void store_input(const Gfs& gfs, const InputFile& f, const std::string& which) {
  if (f.in_gfs) return;  // filed already
  Fd dir = gfs.dir(stored_input_dir(f.sha1), Create::yes);
  std::string name = stored_input_name(f.sha1);
  struct stat st {};
  if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISREG(st.st_mode) || st.st_uid != owner())
      throw std::runtime_error(f.stored + " is not a file ce-run stored; remove it and run again");
    Fd existing = stages::open_regular_at(dir.get(), name, f.stored);
    std::string held = existing ? sha1_fd(existing.get(), f.stored) : std::string();
    if (held == f.sha1) return;
    throw NameCollision("the GFS holds another file as " + f.stored + " (SHA-1 " + held + ") than " + which +
                        " (SHA-1 " + f.sha1 +
                        "); their SHA-1s share the 12 digits that name it. ce-run never files one for the other; "
                        "use another GFS for this call");
  }
  auto temp = stages::make_temp_at(dir.get(), ".tmp." + name + ".", 0444, f.stored);
  Poco::SHA1Engine engine;
  int error = stages::copy_fd(f.fd->get(), temp.fd.get(),
                              [&](const char* data, std::size_t n) { engine.update(data, static_cast<unsigned>(n)); });
  if (error == 0 && ::fsync(temp.fd.get()) != 0) error = errno;
  if (error == 0 && ::close(temp.fd.release()) != 0) error = errno;
  if (error != 0) {
    ::unlinkat(dir.get(), temp.name.c_str(), 0);  // a half-copied input must not stay behind
    throw std::runtime_error("cannot store " + which + " in the GFS: " + std::strerror(error) +
                             space_hint(error, gfs.path()));
  }
  if (Poco::DigestEngine::digestToHex(engine.digest()) != f.sha1) {
    ::unlinkat(dir.get(), temp.name.c_str(), 0);
    throw std::runtime_error(which + " changed while it was being stored; run again");
  }
  // Atomic; a concurrent copy of the same content is the same file.
  if (::renameat(dir.get(), temp.name.c_str(), dir.get(), name.c_str()) != 0) {
    int e = errno;
    ::unlinkat(dir.get(), temp.name.c_str(), 0);
    throw std::runtime_error("cannot store " + which + " in the GFS: " + std::strerror(e));
  }
}

Call::Call(const Gfs& gfs, const std::string& name, const std::string& computation_id,
           const CallContract& contract, const std::vector<std::string>& input_paths, const Invoker& invoker)
    : gfs_(&gfs), name_(name), cid_(computation_id.substr(0, 12)), contract_(contract) {
  if (input_paths.size() != contract.inputs.size())
    throw std::runtime_error(arity_message(contract.inputs, input_paths.size()));
  for (std::size_t i = 0; i < input_paths.size(); ++i) {
    InputFile f = open_input(gfs, contract.inputs[i], input_paths[i], invoker,
                             "input " + std::to_string(i + 1) + " (" + contract.inputs[i] + "): " + input_paths[i]);
    inputs_.push_back(std::move(f));
  }
  std::vector<std::string> keys;
  for (const auto& f : inputs_) keys.push_back(f.sha1.substr(0, 12));
  ins_ = ins_name(keys);
}

std::string Call::relative_dir() const { return call_dir_of(name_, cid_); }
Fd Call::call_dir(Create create) const { return gfs_->dir(relative_dir(), create); }

std::string Call::output_path(std::size_t k) const {
  return (fs::path(gfs_->path()) / relative_dir() / number(k) / ins_).string();
}

std::string Call::record_path() const { return (fs::path(gfs_->path()) / relative_dir() / records / ins_).string(); }

Fd Call::lock_dir() const { return gfs_->dir(relative_dir() + "/" + locks, Create::yes); }

std::string Call::lock_path() const { return (fs::path(gfs_->path()) / relative_dir() / locks / ins_).string(); }

std::string Call::staging_name() const {
  // (StagedCall adds a random part: keep the whole under a file name's 255.)
  std::string ins = ins_.size() > 160 ? "sha256-" + stages::sha256_hex(ins_).substr(0, 40) : ins_;
  return ins + "." + stages::host_name() + "." + std::to_string(::getpid());
}

bool Call::is_staging_name(const std::string& name) const {
  std::string own = staging_name();
  std::string ins = own.substr(0, own.find('.') + 1);  // (the inputs' part: its name has no '.')
  return name.size() > ins.size() && name.rfind(ins, 0) == 0 && name.find('/') == std::string::npos &&
         name.size() < 256;
}

std::string output_number(std::size_t k) { return number(k); }

std::string output_path_of(const Gfs& gfs, const std::string& name, const std::string& computation_id,
                           std::size_t k, const std::vector<std::optional<std::string>>& input_sha1s) {
  std::vector<std::string> keys;
  bool unknown = false;
  for (const auto& s : input_sha1s) {
    keys.push_back(s ? s->substr(0, 12) : std::string("???"));
    unknown = unknown || !s;
  }
  std::string ins = ins_name(keys);
  if (unknown && ins.rfind("sha256-", 0) == 0) ins = "???";
  return (fs::path(gfs.path()) / call_dir_of(name, computation_id.substr(0, 12)) / number(k) / ins).string();
}

std::string Call::log_path(LogStream stream) const {
  return (fs::path(gfs_->path()) / relative_dir() / logs / log_name(ins_, stream)).string();
}

bool Call::has_log() const {
  auto dir = gfs_->find(relative_dir() + "/" + logs);
  struct stat st {};
  return dir && ::fstatat(dir->get(), log_name(ins_, LogStream::err).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG(st.st_mode);
}

std::optional<std::string> read_gfs_file(const Gfs& gfs, const std::string& path, std::size_t limit) {
  fs::path below = fs::path(path).lexically_normal().lexically_relative(gfs.path());
  if (below.empty() || std::any_of(below.begin(), below.end(), [](const fs::path& p) { return p == ".." || p == "."; }))
    return std::nullopt;
  auto dir = gfs.find(below.parent_path().string());
  struct stat st {};
  Fd fd = dir ? stages::open_regular_at(dir->get(), below.filename().string(), path, &st) : Fd();
  if (!fd || st.st_uid != owner()) return std::nullopt;
  off_t from = st.st_size > static_cast<off_t>(limit) ? st.st_size - static_cast<off_t>(limit) : 0;
  std::string text(static_cast<std::size_t>(st.st_size - from), '\0');
  ssize_t n = ::pread(fd.get(), text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return text;
}

CallLog::CallLog(const Call& call, std::size_t limit) : limit_(limit) {
  dir_ = call.gfs_->dir(call.relative_dir() + "/" + logs, Create::yes);
  ins_ = call.ins_;
  shown_ = call.log_path(LogStream::out);
  for (auto stream : {LogStream::out, LogStream::err})
    files_[static_cast<int>(stream)].temp =
        stages::make_temp_at(dir_.get(), ".tmp." + log_name(ins_, stream) + ".", 0444, shown_);
}

CallLog::~CallLog() {
  for (auto& f : files_)
    if (!f.temp.name.empty()) ::unlinkat(dir_.get(), f.temp.name.c_str(), 0);
}

void CallLog::append(LogStream stream, std::string_view bytes) {
  File& f = files_[static_cast<int>(stream)];
  if (f.cut || !f.temp.fd) return;
  std::string_view part = bytes.substr(0, std::min(bytes.size(), limit_ - f.size));
  std::string text(part);
  if (part.size() < bytes.size()) {
    text += "\n[ce-run: the rest of this output was not kept: more than " + std::to_string(limit_) + " bytes]\n";
    f.cut = true;
  }
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::write(f.temp.fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // a log is a help, not a result: a full disk ends it
      f.cut = true;
      return;
    }
    done += static_cast<std::size_t>(n);
  }
  f.size += part.size();
}

void CallLog::keep() {
  for (auto stream : {LogStream::out, LogStream::err}) {
    File& f = files_[static_cast<int>(stream)];
    if (f.temp.name.empty()) continue;
    f.temp.fd = Fd();
    std::string name = log_name(ins_, stream);
    if (::renameat(dir_.get(), f.temp.name.c_str(), dir_.get(), name.c_str()) == 0) f.temp.name.clear();
  }
}

std::optional<CallRecord> Call::done(std::string* problem) const {
  auto fail = [&](const std::string& why) -> std::optional<CallRecord> {
    if (problem) *problem = why;
    return std::nullopt;
  };
  // (Looked up through the Gfs, which remembers the directories it found.)
  auto done_dir = gfs_->find(relative_dir() + "/" + records);
  struct stat st {};
  Fd fd = done_dir ? stages::open_regular_at(done_dir->get(), ins_, record_path(), &st) : Fd();
  if (!fd) return fail("no record");
  // Only a record ce-run wrote counts.
  if (st.st_uid != owner() || (st.st_mode & 0222) != 0)
    return fail("the record is not one ce-run wrote");
  auto record = parse_record(stages::read_all(fd.get(), record_path(), std::size_t{1} << 20), problem);
  if (!record) return std::nullopt;
  if (record->inputs.size() != inputs_.size())
    return fail("the record names " + std::to_string(record->inputs.size()) + " inputs, not " +
                std::to_string(inputs_.size()));
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    const auto& f = inputs_[i];
    const auto& other = record->inputs[i].second;
    if (other == f.sha1) continue;
    throw NameCollision("input " + std::to_string(i + 1) + " (" + f.name + "): " + f.path + " has SHA-1 " + f.sha1 +
                        ", but the result the GFS holds under its name, " + record_path() +
                        ", was computed from another input, " + gfs_->path() + "/" + stored_input(other) + " (SHA-1 " +
                        other +
                        "): the two SHA-1s share the 12 digits that name a result. ce-run never gives one input's "
                        "result for another's; this call cannot be filed in this GFS (use another GFS for it)");
  }
  if (record->outputs.size() != contract_.outputs.size())
    return fail("the record names " + std::to_string(record->outputs.size()) + " outputs, not " +
                std::to_string(contract_.outputs.size()));
  for (std::size_t k = 0; k < record->outputs.size(); ++k) {
    auto out_dir = gfs_->find(relative_dir() + "/" + number(k));
    struct stat out {};
    // The filed output: ce-run's, read-only, one link, the recorded size.
    bool fine = out_dir && ::fstatat(out_dir->get(), ins_.c_str(), &out, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(out.st_mode) && out.st_uid == owner() && out.st_nlink == 1 && (out.st_mode & 0222) == 0 &&
                static_cast<std::int64_t>(out.st_size) == record->outputs[k].size;
    if (!fine) return fail("output " + std::to_string(k) + " (" + contract_.outputs[k] + ") is missing or changed");
  }
  return record;
}

void Call::store_inputs() const {
  for (std::size_t i = 0; i < inputs_.size(); ++i)
    store_input(*gfs_, inputs_[i], "input " + inputs_[i].name + " (" + inputs_[i].path + ")");
}

CallRecord Call::promote(const StagedCall& staging, CallRecord record) const {
  record.outputs.clear();
  Fd dir = call_dir(Create::yes);
  struct Filed {
    Fd dir;
    std::string temp;
  };
  std::vector<Filed> filed;
  auto discard = [&] {
    for (auto& f : filed) ::unlinkat(f.dir.get(), f.temp.c_str(), 0);
  };
  try {
    for (std::size_t k = 0; k < contract_.outputs.size(); ++k) {
      std::string which = "output " + std::to_string(k) + " (" + contract_.outputs[k] + ")";
      std::string shown = staging.container_path() + "/" + number(k);
      Fd out;
      try {
        out = stages::open_regular_at(staging.fd(), number(k), shown);
      } catch (const stages::HostFileError& e) {
        throw std::runtime_error(which + ": " + e.what() + "; an output must be a regular file the command wrote");
      }
      if (!out) throw std::runtime_error(which + " was not written to " + shown);
      struct stat st {};
      if (::fstat(out.get(), &st) != 0 || st.st_nlink != 1)
        throw std::runtime_error(which + ": " + shown + " has " + std::to_string(st.st_nlink) +
                                 " hard links; an output must be a file of its own");
      Fd out_dir = stages::open_directory_at(dir.get(), number(k), Create::yes, 0755, owner(), output_path(k));
      auto temp = stages::make_temp_at(out_dir.get(), ".tmp." + ins_ + ".", 0444, output_path(k));
      filed.push_back({std::move(out_dir), temp.name});
      // The copy is what is hashed: the record describes the filed bytes.
      Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
      std::int64_t size = 0;
      int error = stages::copy_fd(out.get(), temp.fd.get(), [&](const char* data, std::size_t n) {
        engine.update(data, static_cast<unsigned>(n));
        size += static_cast<std::int64_t>(n);
      });
      if (error == 0 && ::fsync(temp.fd.get()) != 0) error = errno;
      if (error == 0 && ::close(temp.fd.release()) != 0) error = errno;
      if (error != 0)
        throw std::runtime_error("cannot file " + which + " in the GFS: " + std::strerror(error) +
                                 space_hint(error, gfs_->path()));
      record.outputs.push_back({contract_.outputs[k], Poco::DigestEngine::digestToHex(engine.digest()), size});
    }
    for (auto& f : filed)
      if (::renameat(f.dir.get(), f.temp.c_str(), f.dir.get(), ins_.c_str()) != 0)
        throw std::runtime_error("cannot file an output in the GFS: " + std::string(std::strerror(errno)));
  } catch (...) {
    discard();
    throw;
  }
  for (const auto& f : inputs_) record.inputs.emplace_back(f.name, f.sha1);
  Fd done_dir = stages::open_directory_at(dir.get(), records, Create::yes, 0755, owner(), record_path());
  stages::write_atomically_at(done_dir.get(), ins_, format_record(record), 0444, record_path());
  return record;
}

std::vector<std::string> Call::verify() const {
  Fd dir = call_dir(Create::no);
  Fd done_dir = dir ? stages::open_directory_at(dir.get(), records, Create::no, 0755, owner(), record_path()) : Fd();
  Fd fd = done_dir ? stages::open_regular_at(done_dir.get(), ins_, record_path()) : Fd();
  if (!fd) return {"no record: the call is not done"};
  std::string problem;
  auto record = parse_record(stages::read_all(fd.get(), record_path(), std::size_t{1} << 20), &problem);
  if (!record) return {record_path() + ": " + problem};
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < record->inputs.size() && i < inputs_.size(); ++i)
    if (record->inputs[i].second != inputs_[i].sha1)
      problems.push_back("input " + std::to_string(i + 1) + " (" + inputs_[i].name + "): SHA-1 " + inputs_[i].sha1 +
                         ", the record's " + record->inputs[i].second);
  if (record->outputs.size() != contract_.outputs.size())
    problems.push_back("the record names " + std::to_string(record->outputs.size()) + " outputs, the computation " +
                       std::to_string(contract_.outputs.size()));
  for (std::size_t k = 0; k < record->outputs.size(); ++k) {
    std::string path = output_path(k);
    Fd out_dir = stages::open_directory_at(dir.get(), number(k), Create::no, 0755, owner(), path);
    Fd out;
    try {
      if (out_dir) out = stages::open_regular_at(out_dir.get(), ins_, path);
    } catch (const stages::HostFileError& e) {
      problems.push_back(e.what());
      continue;
    }
    if (!out) {
      problems.push_back(path + ": missing");
      continue;
    }
    std::string actual = sha256_fd(out.get(), path);
    if (actual != record->outputs[k].sha256)
      problems.push_back(path + ": SHA-256 " + actual + ", recorded " + record->outputs[k].sha256);
  }
  return problems;
}

std::string Call::withdraw_record() const {
  Fd dir = call_dir(Create::no);
  Fd done_dir = dir ? stages::open_directory_at(dir.get(), records, Create::no, 0755, owner(), record_path()) : Fd();
  if (!done_dir) return {};
  std::string aside = ins_ + ".corrupt." + std::to_string(::time(nullptr));
  if (::renameat(done_dir.get(), ins_.c_str(), done_dir.get(), aside.c_str()) != 0) {
    if (errno == ENOENT) return {};
    throw std::runtime_error("cannot withdraw the record " + record_path() + ": " + std::strerror(errno));
  }
  return (fs::path(record_path()).parent_path() / aside).string();
}

std::optional<CollectedResults> collect_results(const Gfs& gfs, const std::string& name,
                                                const std::set<std::string>& keep_cid12, const std::string& compdir,
                                                const std::string& host, bool dry_run) {
  std::string base = computation_dir(name);
  Fd root = gfs.dir(base, Create::no);
  if (!root) return std::nullopt;
  CollectedResults collected;
  auto shown = [&](const std::string& relative) { return gfs.path() + "/" + relative; };
  for (const auto& cid : stages::list_directory(root.get())) {
    if (keep_cid12.count(cid)) continue;
    std::string call = call_dir_of(name, cid);
    Fd dir = gfs.dir(call, Create::no);
    Fd done = dir ? gfs.dir(call + "/" + records, Create::no) : Fd();
    std::size_t mine = 0, theirs = 0;
    for (const auto& ins : done ? stages::list_directory(done.get()) : std::vector<std::string>{}) {
      std::string record_shown = shown(call + "/" + records + "/" + ins);
      std::optional<CallRecord> record;
      try {
        if (Fd f = stages::open_regular_at(done.get(), ins, record_shown))
          record = parse_record(stages::read_all(f.get(), record_shown, std::size_t{1} << 20));
      } catch (const std::exception&) {
      }
      if (!record || record->compdir != compdir || record->host != host) {
        ++theirs;
        continue;
      }
      ++mine;
      if (dry_run) continue;
      for (std::size_t k = 0; k < record->outputs.size(); ++k) {
        std::string output_dir = call + "/" + number(k);
        if (Fd out = gfs.dir(output_dir, Create::no))
          stages::remove_tree_at(out.get(), ins, shown(output_dir + "/" + ins));
      }
      stages::remove_tree_at(done.get(), ins, record_shown);
    }
    if (mine == 0) {
      if (theirs > 0) ++collected.left_to_others;
      continue;
    }
    if (theirs == 0 && !dry_run) stages::remove_tree_at(root.get(), cid, shown(call));
    collected.removed.push_back({cid, mine});
  }
  return collected;
}

namespace {

// The machine's staging root: made root's alone (0700) whatever it was.
Fd open_staging_root(const std::string& root, Create create) {
  if (create == Create::yes) fs::create_directories(fs::path(root).parent_path());
  Fd parent = stages::open_directory(fs::path(root).parent_path().string(), owner());
  Fd fd = stages::open_directory_at(parent.get(), fs::path(root).filename().string(), create, 0700, owner(),
                                    fs::path(root).parent_path().string());
  if (fd) ::fchmod(fd.get(), 0700);
  return fd;
}

}  // namespace

std::string container_staging_dir(const std::string& root, const std::string& key) {
  Fd top = open_staging_root(root, Create::yes);
  stages::open_directory_at(top.get(), key, Create::yes, 0755, owner(), root);
  return root + "/" + key;
}

StagedCall::StagedCall(const std::string& root, const std::string& container_key, const std::string& name,
                       const std::string& user)
    : root_(root), key_(container_key), name_(name + "." + stages::random_word()) {
  Fd top = open_staging_root(root, Create::yes);
  container_dir_ = stages::open_directory_at(top.get(), key_, Create::yes, 0755, owner(), root);
  if (::mkdirat(container_dir_.get(), name_.c_str(), 0700) != 0)
    throw std::runtime_error("cannot make a staging directory in " + root + "/" + key_ + ": " + std::strerror(errno));
  fd_.reset(::openat(container_dir_.get(), name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd_) throw std::runtime_error("cannot open the staging directory " + host_path() + ": " + std::strerror(errno));
  // Held while this call runs: `ce-run gc` leaves a held directory alone.
  ::flock(fd_.get(), LOCK_EX);
  // The command's user writes its outputs here.
  unsigned uid = 0, gid = 0;
  if (std::sscanf(user.c_str(), "%u:%u", &uid, &gid) == 2 && std::to_string(uid) + ":" + std::to_string(gid) == user) {
    if (::fchown(fd_.get(), uid, gid) != 0)
      throw std::runtime_error("cannot give " + host_path() + " to " + user + ": " + std::strerror(errno));
  } else {
    ::fchmod(fd_.get(), 0777);  // a user by name: who it is, only the container knows
  }
}

StagedCall::~StagedCall() = default;

std::optional<StagedCall> StagedCall::adopt(const std::string& root, const std::string& container_key,
                                            const std::string& name) {
  if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos) return std::nullopt;
  StagedCall staged;
  staged.root_ = root;
  staged.key_ = container_key;
  staged.name_ = name;
  Fd top = open_staging_root(root, Create::no);
  if (!top) return std::nullopt;
  staged.container_dir_ = stages::open_directory_at(top.get(), container_key, Create::no, 0755, owner(), root);
  if (!staged.container_dir_) return std::nullopt;
  staged.fd_.reset(::openat(staged.container_dir_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!staged.fd_ || ::flock(staged.fd_.get(), LOCK_EX | LOCK_NB) != 0) return std::nullopt;
  return staged;
}

std::string StagedCall::host_path() const { return root_ + "/" + key_ + "/" + name_; }

void StagedCall::remove() {
  if (!container_dir_) return;
  stages::remove_tree_at(container_dir_.get(), name_, host_path());
  fd_.reset();
}

std::vector<std::string> collect_staging(const std::string& root, const std::vector<std::string>& live,
                                         bool dry_run, const std::vector<std::string>& in_use) {
  std::vector<std::string> removed;
  if (!fs::exists(root)) return removed;
  Fd top = open_staging_root(root, Create::no);
  if (!top) return removed;
  for (const auto& key : stages::list_directory(top.get())) {
    Fd container = stages::open_directory_at(top.get(), key, Create::no, 0755, owner(), root);
    if (!container) continue;
    bool busy = false;
    for (const auto& call : stages::list_directory(container.get())) {
      Fd dir(::openat(container.get(), call.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if ((dir && ::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) ||
          std::find(in_use.begin(), in_use.end(), call) != in_use.end()) {
        busy = true;  // the call runs right now
        continue;
      }
      std::string path = root + "/" + key + "/" + call;
      if (!dry_run) stages::remove_tree_at(container.get(), call, path);
      removed.push_back(path);
    }
    bool gone = std::find(live.begin(), live.end(), key) == live.end();
    if (gone && !busy && !dry_run) ::unlinkat(top.get(), key.c_str(), AT_REMOVEDIR);
  }
  return removed;
}

}  // namespace ce::runner
