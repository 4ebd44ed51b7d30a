// The network namespace a build container runs in.
//
// Stages need the network (a stage may apt-get install), and making a
// network namespace is most of what starting a container costs here (about
// 0.15 of 0.25 s). So, as BuildKit keeps a pool of namespaces, build
// containers join the namespace of a long-lived holder container
// (NetworkMode "container:<holder>") instead of getting a new one:
//   holder K = the container named "ce-run-network-K" (K = 0..7), on the
//              engine's default bridge network, labelled ce-run.role=network,
//              running `sleep` under init in the base image of the build
//              that made it;
//   one build at a time per holder, under LOCK_DIR/network-K.lock.
// A build takes the first holder whose lock is free, making or starting it
// as needed, so concurrent builds never share a namespace; builds one after
// another do, as they would share a build host. Without a holder (all
// busy, a name taken by a container not ours, an engine error) the build
// container gets a namespace of its own, as before. A holder may be removed
// at any time (`ce-run gc` removes idle ones); the next build makes it again.
#pragma once

#include <memory>
#include <string>

#include "docker/client.h"
#include "stages/file_lock.h"

namespace ce::stages {

class BuildNetwork {
 public:
  static constexpr int holders = 8;
  static std::string holder_name(int k) { return "ce-run-network-" + std::to_string(k); }
  static std::string lock_path(const std::string& lock_dir, int k) {
    return lock_dir + "/network-" + std::to_string(k) + ".lock";
  }

  // Takes a holder, made from `image` if it has to be made.
  BuildNetwork(docker::Client& client, const std::string& lock_dir, const std::string& image);

  // For ContainerSpec::network_mode: "container:<id>", or "" for a
  // namespace of the build container's own.
  const std::string& network_mode() const { return mode_; }

 private:
  std::unique_ptr<FileLock> lock_;
  std::string mode_;
};

enum class Removal { dry_run, remove };
// Removes the holders no build is using (or, on a dry run, only counts
// them); returns how many.
int remove_idle_build_networks(docker::Client& client, const std::string& lock_dir, Removal removal);

}  // namespace ce::stages
