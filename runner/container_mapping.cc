#include "runner/container_mapping.h"

#include "runner/compdir.h"
#include "runner/git_identity.h"
#include "stages/stage_key.h"
#include "docker/client.h"
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "stages/host_files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace ce::runner {

namespace {
const char* const signature = "ce-run docker-container 1";

bool is_hex(const std::string& s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

const MappingEntry* ContainerMapping::find(const std::string& commit) const {
  for (const auto& e : entries)
    if (e.commit == commit) return &e;
  return nullptr;
}

void ContainerMapping::put(MappingEntry entry) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->commit == entry.commit) {
      entries.erase(it);
      break;
    }
  }
  entries.insert(entries.begin(), std::move(entry));
  if (entries.size() > max_entries) entries.resize(max_entries);
}

MappingRead parse_mapping(const std::string& text) {
  MappingRead read;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) {
    read.problem = "it is empty";
    return read;
  }
  if (line != signature) {
    if (line.rfind("ce-run docker-container ", 0) == 0)
      read.problem = "it is of another version (" + line.substr(24) + ")";
    else
      read.problem = "its first line is not \"" + std::string(signature) + "\"";
    return read;
  }
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    MappingEntry e;
    std::string extra;
    fields >> e.commit >> e.tree >> e.container >> e.stage_key >> e.created;
    std::string commit_hex = e.commit.substr(0, 40);
    bool ok = !e.created.empty() && !(fields >> extra) && is_hex(commit_hex, 40, 40) &&
              (e.commit.size() == 40 || e.commit.substr(40) == "-dirty") && is_hex(e.container, 12, 64);
    if (!ok) {
      read.mapping.entries.clear();
      read.problem = "line " + std::to_string(number) + " is damaged";
      return read;
    }
    read.mapping.entries.push_back(std::move(e));
  }
  if (!text.empty() && text.back() != '\n') {
    read.mapping.entries.clear();
    read.problem = "it was cut short";
  }
  return read;
}

MappingRead read_mapping(const std::string& path) {
  stages::Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return {};  // no file yet: nothing to say
  return parse_mapping(stages::read_all(fd.get(), path));
}

MappingRead read_mapping(const CompDir& compdir) {
  try {
    auto text = compdir.read("docker-container");
    if (!text) return {};  // no file yet: nothing to say
    return parse_mapping(*text);
  } catch (const std::exception& e) {
    MappingRead read;
    read.problem = std::string("it cannot be used (") + e.what() + ")";
    return read;
  }
}

// The directories a container mounts from paths a user controls must be
// the ones ce-run opened and checked: a path swapped for a symlink between
// the check and the engine's mount would show the container another
// directory. Compares the mounts, as the container's root sees them, with
// the descriptors (device and inode).
void check_mounts(docker::Client& client, const std::string& container,
                  const std::vector<std::pair<std::string, int>>& expected) {
  auto info = client.find_container(container);
  if (!info || info->state.pid <= 0) throw std::runtime_error("the container " + container.substr(0, 12) + " is not running");
  stages::Fd root(::open(("/proc/" + std::to_string(info->state.pid) + "/root").c_str(),
                         O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) throw std::runtime_error("cannot look into the container " + container.substr(0, 12));
  for (const auto& [path, fd] : expected) {
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    stages::Fd mounted(static_cast<int>(::syscall(SYS_openat2, root.get(), path.c_str(), &how, sizeof how)));
    struct stat inside {}, outside {};
    if (!mounted || ::fstat(mounted.get(), &inside) != 0 || ::fstat(fd, &outside) != 0 ||
        inside.st_dev != outside.st_dev || inside.st_ino != outside.st_ino) {
      client.remove_container(container, docker::Force::yes);
      throw std::runtime_error("the container mounted another directory than " + path +
                               " (was the path changed while ce-run ran?); the container was removed; run again");
    }
  }
}

std::string mapping_key(const GitIdentity& identity) {
  return identity.commit + (identity.dirty_files.empty() ? "" : "-dirty");
}

docker::Labels run_container_labels(const std::string& name, const std::string& compdir, const std::string& key,
                                    const std::string& tree, const std::string& stage_key,
                                    const std::string& staging_key) {
  return {{label::role, "run"},  {label::computation, name},   {label::compdir, compdir}, {label::commit, key},
          {label::tree, tree},   {label::stage_key, stage_key}, {label::staging, staging_key}};
}

docker::Labels run_container_filter(const std::string& compdir) {
  docker::Labels filter{{label::role, "run"}};
  if (!compdir.empty()) filter[label::compdir] = compdir;
  return filter;
}

std::string staging_key(const std::string& compdir, const std::string& key) {
  return stages::sha256_hex(compdir + "\n" + key).substr(0, 24);
}

bool is_run_container_of(const docker::Labels& labels, const std::string& compdir, const std::string& commit) {
  auto is = [&](const char* key, const std::string& value) {
    auto it = labels.find(key);
    return it != labels.end() && it->second == value;
  };
  return is(label::role, "run") && is(label::compdir, compdir) && is(label::commit, commit);
}

std::string format_mapping(const ContainerMapping& mapping) {
  std::string out = std::string(signature) + "\n# computation(commit) -> container; written by ce-run\n";
  for (const auto& e : mapping.entries)
    out += e.commit + " " + e.tree + " " + e.container + " " + e.stage_key + " " + e.created + "\n";
  return out;
}

void write_mapping(const CompDir& compdir, const ContainerMapping& mapping, const Invoker& invoker) {
  write_compdir_file(compdir, "docker-container", format_mapping(mapping), invoker);
}

}  // namespace ce::runner
