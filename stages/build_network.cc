#include "stages/build_network.h"

#include "stages/stage_engine.h"

namespace ce::stages {

namespace {

// The holder K's id, running; empty when it cannot be had.
std::string ensure_holder(docker::Client& client, int k, const std::string& image) {
  std::string name = BuildNetwork::holder_name(k);
  if (auto info = client.find_container(name)) {
    auto role = info->labels.find(label::role);
    if (role == info->labels.end() || role->second != "network") return {};  // someone else's
    if (!info->state.running) client.start_container(info->id);
    return info->id;
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
  return id;
}

}  // namespace

BuildNetwork::BuildNetwork(docker::Client& client, const std::string& lock_dir, const std::string& image) {
  for (int k = 0; k < holders; ++k) {
    auto lock = std::make_unique<FileLock>(lock_path(lock_dir, k), Wait::no);
    if (!lock->held()) continue;
    try {
      std::string id = ensure_holder(client, k, image);
      if (id.empty()) continue;
      mode_ = "container:" + id;
      lock_ = std::move(lock);
    } catch (const docker::EngineError&) {
      // No shared namespace then: the build gets one of its own.
    }
    return;
  }
}

int remove_idle_build_networks(docker::Client& client, const std::string& lock_dir, Removal removal) {
  int removed = 0;
  for (int k = 0; k < BuildNetwork::holders; ++k) {
    FileLock lock(BuildNetwork::lock_path(lock_dir, k), Wait::no);
    if (!lock.held()) continue;
    auto info = client.find_container(BuildNetwork::holder_name(k));
    if (!info) continue;
    auto role = info->labels.find(label::role);
    if (role == info->labels.end() || role->second != "network") continue;
    if (removal == Removal::remove) client.remove_container(info->id, docker::Force::yes);
    ++removed;
  }
  return removed;
}

}  // namespace ce::stages
