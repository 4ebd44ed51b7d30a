// The network namespace a build container runs in.
//
// Stages need the network (a stage may apt-get install), and making a
// network namespace is most of what starting a container costs here (about
// 0.15 of 0.25 s). So, as BuildKit keeps a pool of namespaces, build
// containers join the namespace of a long-lived holder container
// (NetworkMode "container:<holder>") instead of getting a new one:
//   holder K = the container named "ce-run-network-H-K" (K = 0..7; H: 8 hex
//              digits of SHA-256 of this host's name and the lock directory,
//              so hosts sharing an engine, and tests with lock directories
//              of their own, never share one), on the engine's default
//              bridge network, labelled ce-run.role=network, running
//              `sleep` under init in the base image of the build that made it;
//   one build at a time per holder, under LOCK_DIR/network-K.lock.
// A build takes the first holder whose lock is free, making or starting it
// as needed, so concurrent builds never share a namespace; builds one after
// another do, as they would share a build host. A joined container also
// shares the holder's /etc/hosts, /etc/resolv.conf and /etc/hostname, so a
// holder is used only when the engine is local and those files can be
// watched: a holder whose files a build changed is removed afterwards, and
// one older than the host's /etc/resolv.conf is made anew. Without a holder
// (all busy, a remote engine, a name taken by a container not ours, an
// engine error) the build container gets a namespace of its own. A holder
// may be removed at any time (`ce-run gc` removes idle ones).
#pragma once

#include <memory>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "docker/client.h"
#include "stages/file_lock.h"

namespace ce::stages {

class BuildNetwork {
 public:
  static constexpr int holders = 8;
  static std::string holder_name(const std::string& lock_dir, int k);
  static std::string lock_path(const std::string& lock_dir, int k) {
    return lock_dir + "/network-" + std::to_string(k) + ".lock";
  }

  // Takes a holder, made from `image` if it has to be made.
  BuildNetwork(docker::Client& client, const std::string& lock_dir, const std::string& image);
  // Call when the build containers that joined it are gone: removes the
  // holder if its files were changed.
  ~BuildNetwork();
  BuildNetwork(const BuildNetwork&) = delete;
  BuildNetwork& operator=(const BuildNetwork&) = delete;

  // For ContainerSpec::network_mode: "container:<id>", or "" for a
  // namespace of the build container's own.
  const std::string& network_mode() const { return mode_; }

 private:
  docker::EngineAddress engine_;
  std::unique_ptr<FileLock> lock_;
  std::string holder_, mode_;
  std::vector<std::pair<std::string, struct stat>> files_;  // the holder's files as taken
};

enum class Removal { dry_run, remove };
// Removes the holders no build is using (or, on a dry run, only counts
// them); returns how many.
int remove_idle_build_networks(docker::Client& client, const std::string& lock_dir, Removal removal);

}  // namespace ce::stages
