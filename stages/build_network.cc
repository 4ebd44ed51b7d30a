#include "stages/build_network.h"

#include <unistd.h>

#include "stages/stage_engine.h"
#include "stages/stage_key.h"
#include "stages/host_files.h"

namespace ce::stages {

namespace {

bool ours(const docker::ContainerInfo& info) {
  auto role = info.labels.find(label::role);
  return role != info.labels.end() && role->second == "network";
}

bool same(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// The holder's files, as they are now; empty when one cannot be seen (a
// remote engine): then it is not used.
std::vector<std::pair<std::string, struct stat>> holder_files(const docker::ContainerInfo& info) {
  std::vector<std::pair<std::string, struct stat>> files;
  for (const auto& path : {info.hosts_path, info.resolv_conf_path, info.hostname_path}) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return {};
    files.emplace_back(path, st);
  }
  return files;
}

// Holder K, running and fit to use; nullopt when it cannot be had.
std::optional<docker::ContainerInfo> ensure_holder(docker::Client& client, const std::string& name,
                                                   const std::string& image) {
  if (auto info = client.find_container(name)) {
    if (!ours(*info)) return std::nullopt;
    // Made before the host's name servers changed: its resolv.conf is stale.
    struct stat host {}, held {};
    bool stale = ::stat("/etc/resolv.conf", &host) == 0 && ::stat(info->resolv_conf_path.c_str(), &held) == 0 &&
                 host.st_mtim.tv_sec > held.st_mtim.tv_sec;
    if (!stale) {
      if (!info->state.running) client.start_container(info->id);
      return info;
    }
    client.remove_container(info->id, docker::Force::yes);
  }
  docker::ContainerSpec spec;
  spec.name = name;
  spec.image = image;
  spec.entrypoint = {"sleep"};
  spec.cmd = {"2147483647"};
  spec.init = true;
  spec.labels = {{label::role, "network"}};
  std::string id = client.create_container(spec);
  try {
    client.start_container(id);
  } catch (...) {
    client.remove_container(id, docker::Force::yes);
    throw;
  }
  return client.inspect_container(id);
}

}  // namespace

std::string BuildNetwork::holder_name(const std::string& lock_dir, int k) {
  return "ce-run-network-" + sha256_hex(host_name() + "\n" + lock_dir).substr(0, 8) + "-" + std::to_string(k);
}

BuildNetwork::BuildNetwork(docker::Client& client, const std::string& lock_dir, const std::string& image)
    : engine_(client.address()) {
  if (engine_.kind != docker::EngineAddress::Kind::unix_socket) return;
  for (int k = 0; k < holders; ++k) {
    auto lock = std::make_unique<FileLock>(lock_path(lock_dir, k), Wait::no);
    if (!lock->held()) continue;
    try {
      auto holder = ensure_holder(client, holder_name(lock_dir, k), image);
      if (!holder) continue;
      files_ = holder_files(*holder);
      if (files_.empty()) return;
      holder_ = holder->id;
      mode_ = "container:" + holder->id;
      lock_ = std::move(lock);
    } catch (const docker::EngineError&) {
      // No shared namespace then: the build gets one of its own.
    }
    return;
  }
}

BuildNetwork::~BuildNetwork() {
  if (holder_.empty()) return;
  for (const auto& [path, before] : files_) {
    struct stat now {};
    if (::stat(path.c_str(), &now) == 0 && same(before, now)) continue;
    // A build changed what later builds would see: start them afresh.
    try {
      docker::Client(engine_).remove_container(holder_, docker::Force::yes);
    } catch (const std::exception&) {
    }
    return;
  }
}

int remove_idle_build_networks(docker::Client& client, const std::string& lock_dir, Removal removal) {
  int removed = 0;
  for (int k = 0; k < BuildNetwork::holders; ++k) {
    FileLock lock(BuildNetwork::lock_path(lock_dir, k), Wait::no);
    if (!lock.held()) continue;
    auto info = client.find_container(BuildNetwork::holder_name(lock_dir, k));
    if (!info || !ours(*info)) continue;
    if (removal == Removal::remove) client.remove_container(info->id, docker::Force::yes);
    ++removed;
  }
  return removed;
}

}  // namespace ce::stages
