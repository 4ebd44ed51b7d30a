#include "runner/gfs.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA1Engine.h>
#include <Poco/SHA2Engine.h>

#include <boost/filesystem.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

const char* const record_signature = "ce-run call record 1";

template <typename Engine>
std::string hash_file(const std::string& path, Engine& engine) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw std::runtime_error("cannot read " + path + ": " + std::strerror(error));
    }
    if (n == 0) break;
    engine.update(buffer, static_cast<unsigned>(n));
  }
  ::close(fd);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

std::vector<std::string> read_lines(const fs::path& file) {
  std::ifstream in(file.string());
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Copies a file's bytes with read and write: Boost 1.74's copy_file fails
// with EXDEV between file systems (copy_file_range without a fallback), and
// the GFS is often on another one. Returns 0 or the errno.
int copy_contents(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno;
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    int error = errno;
    ::close(in);
    return error;
  }
  int error = 0;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(in, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) error = errno;
      break;
    }
    for (ssize_t done = 0; done < n && error == 0;) {
      ssize_t w = ::write(out, buffer + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) error = w < 0 ? errno : EIO;
      else done += w;
    }
    if (error != 0) break;
  }
  ::close(in);
  if (::close(out) != 0 && error == 0) error = errno;
  return error;
}

// Writes `text` to `path` through a temporary file in the same directory.
void write_atomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  fs::path temp = path.parent_path() / (".tmp." + path.filename().string() + "." + std::to_string(::getpid()));
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + temp.string() + ": " + std::strerror(errno));
  const char* data = text.data();
  std::size_t left = text.size();
  bool ok = true;
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  int error = errno;
  if (ok && ::fsync(fd) != 0) ok = false, error = errno;
  if (::close(fd) != 0 && ok) ok = false, error = errno;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    if (ok) error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(error));
  }
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

std::optional<std::uint64_t> full_file_system(const std::string& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) return std::nullopt;
  std::uint64_t available = static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
  if (info.f_bavail == 0 || info.f_bfree == 0) return available;
  return std::nullopt;
}

std::string sha1_file(const std::string& path) {
  Poco::SHA1Engine engine;
  return hash_file(path, engine);
}

std::string sha256_file(const std::string& path) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  return hash_file(path, engine);
}

std::optional<CallContract> read_contract(const std::string& compdir) {
  fs::path dir = compdir;
  auto pick = [&](const char* plain, const char* long_name) -> fs::path {
    if (fs::exists(dir / plain)) return dir / plain;
    if (fs::exists(dir / long_name)) return dir / long_name;
    return {};
  };
  fs::path outputs = pick("outputs", "compeval-outputs");
  if (outputs.empty()) return std::nullopt;
  CallContract contract;
  contract.outputs = read_lines(outputs);
  if (contract.outputs.empty())
    throw std::runtime_error(outputs.string() + " names no output; write one symbolic name per line");
  fs::path inputs = pick("inputs", "compeval-inputs");
  if (!inputs.empty()) contract.inputs = read_lines(inputs);
  fs::path exec = pick("exec", "compeval-exec");
  contract.exec = exec.empty() ? (dir / "exec").string() : exec.string();
  return contract;
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

Call::Call(const std::string& gfs, const std::string& name, const std::string& computation_id,
           const CallContract& contract, const std::vector<std::string>& input_paths)
    : gfs_(gfs), contract_(contract) {
  if (input_paths.size() != contract.inputs.size()) {
    std::string names;
    for (const auto& n : contract.inputs) names += (names.empty() ? "" : ", ") + n;
    throw std::runtime_error("expected " + std::to_string(contract.inputs.size()) + " input" +
                             (contract.inputs.size() == 1 ? "" : "s") + (names.empty() ? "" : " (" + names + ")") +
                             ", got " + std::to_string(input_paths.size()));
  }
  for (std::size_t i = 0; i < input_paths.size(); ++i) {
    InputFile f;
    f.name = contract.inputs[i];
    f.path = fs::absolute(input_paths[i]).lexically_normal().string();
    if (!fs::is_regular_file(f.path) || ::access(f.path.c_str(), R_OK) != 0)
      throw std::runtime_error("input " + std::to_string(i + 1) + " (" + f.name + "): " + input_paths[i] +
                               " is not a readable regular file");
    f.sha1 = sha1_file(f.path);
    f.stored = (fs::path(gfs_) / "tinputs" / f.sha1.substr(0, 2) / f.sha1.substr(2, 10)).string();
    ins_ += (ins_.empty() ? "" : "_") + f.sha1.substr(0, 12);
    inputs_.push_back(std::move(f));
  }
  if (ins_.empty()) ins_ = "none";
  dir_ = (fs::path(gfs_) / ("c_" + name) / computation_id.substr(0, 12)).string();
}

std::string Call::output_path(std::size_t k) const {
  char number[24];
  std::snprintf(number, sizeof number, "%02zu", k);
  return (fs::path(dir_) / number / ins_).string();
}

std::string Call::record_path() const { return (fs::path(dir_) / "done" / ins_).string(); }
std::string Call::lock_path() const { return (fs::path(dir_) / ".locks" / ins_).string(); }
std::string Call::staging_root() const { return (fs::path(dir_) / ".staging").string(); }

std::optional<CallRecord> Call::done(std::string* problem) const {
  std::ifstream in(record_path(), std::ios::binary);
  if (!in) {
    if (problem) *problem = "no record";
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto record = parse_record(text.str(), problem);
  if (!record) return std::nullopt;
  if (record->outputs.size() != contract_.outputs.size()) {
    if (problem) *problem = "the record names " + std::to_string(record->outputs.size()) + " outputs, not " +
                            std::to_string(contract_.outputs.size());
    return std::nullopt;
  }
  for (std::size_t k = 0; k < record->outputs.size(); ++k) {
    boost::system::error_code ec;
    auto size = fs::file_size(output_path(k), ec);
    if (ec || static_cast<std::int64_t>(size) != record->outputs[k].size) {
      if (problem) *problem = "output " + std::to_string(k) + " (" + contract_.outputs[k] + ") is missing or changed";
      return std::nullopt;
    }
  }
  return record;
}

void Call::store_inputs() const {
  for (const auto& f : inputs_) {
    if (fs::exists(f.stored)) continue;
    fs::create_directories(fs::path(f.stored).parent_path());
    fs::path temp = fs::path(f.stored).parent_path() / (".tmp." + f.sha1 + "." + std::to_string(::getpid()));
    if (int error = copy_contents(f.path, temp.string()); error != 0) {
      ::unlink(temp.c_str());  // a half-copied input must not stay behind
      throw std::runtime_error("cannot store input " + f.name + " (" + f.path + ") in the GFS: " +
                               std::strerror(error) +
                               (error == ENOSPC || error == EDQUOT ? "; free space in " + gfs_ + " and run again"
                                                                   : std::string()));
    }
    if (sha1_file(temp.string()) != f.sha1) {
      fs::remove(temp);
      throw std::runtime_error("input " + f.name + " (" + f.path + ") changed while it was being stored; run again");
    }
    fs::rename(temp, f.stored);  // atomic; a concurrent copy of the same content is the same file
  }
}

std::string Call::make_staging() const {
  fs::path staging = fs::path(staging_root()) / (ins_ + "." + host_name() + "." + std::to_string(::getpid()));
  fs::remove_all(staging);
  fs::create_directories(staging);
  return staging.string();
}

void Call::promote(const std::string& staging, CallRecord record) const {
  record.outputs.clear();
  std::vector<std::string> staged;
  for (std::size_t k = 0; k < contract_.outputs.size(); ++k) {
    char number[24];
    std::snprintf(number, sizeof number, "%02zu", k);
    fs::path file = fs::path(staging) / number;
    if (!fs::is_regular_file(file))
      throw std::runtime_error("output " + std::to_string(k) + " (" + contract_.outputs[k] +
                               ") was not written to " + file.string());
    record.outputs.push_back({contract_.outputs[k], sha256_file(file.string()),
                              static_cast<std::int64_t>(fs::file_size(file))});
    staged.push_back(file.string());
  }
  for (std::size_t k = 0; k < staged.size(); ++k) {
    fs::create_directories(fs::path(output_path(k)).parent_path());
    fs::rename(staged[k], output_path(k));
  }
  for (const auto& f : inputs_) record.inputs.emplace_back(f.name, f.sha1);
  write_atomically(record_path(), format_record(record));
  boost::system::error_code ec;
  fs::remove_all(staging, ec);
}

std::vector<std::string> Call::verify() const {
  std::vector<std::string> problems;
  std::string problem;
  std::ifstream in(record_path(), std::ios::binary);
  if (!in) return {"no record: the call is not done"};
  std::ostringstream text;
  text << in.rdbuf();
  auto record = parse_record(text.str(), &problem);
  if (!record) return {record_path() + ": " + problem};
  if (record->outputs.size() != contract_.outputs.size())
    problems.push_back("the record names " + std::to_string(record->outputs.size()) + " outputs, the computation " +
                       std::to_string(contract_.outputs.size()));
  for (std::size_t k = 0; k < record->outputs.size(); ++k) {
    std::string path = output_path(k);
    if (!fs::is_regular_file(path)) {
      problems.push_back(path + ": missing");
      continue;
    }
    std::string actual = sha256_file(path);
    if (actual != record->outputs[k].sha256)
      problems.push_back(path + ": SHA-256 " + actual + ", recorded " + record->outputs[k].sha256);
  }
  return problems;
}

}  // namespace ce::runner
