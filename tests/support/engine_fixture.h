// Support for [docker] tests: a client of the real engine, a label that marks
// every resource a test creates, and cleanup of all of them when the test
// ends, failed or not.
#pragma once

#include <boost/filesystem.hpp>
#include <string>
#include <vector>

#include "docker/client.h"

namespace ce::test {

// A fresh directory for one test case; removed when the case passes, kept
// (and its path printed) when it fails, as ccache's tests do.
class TempDir {
 public:
  // Storage::memory: on /dev/shm where there is one, for tests that make and
  // remove many files (on some machines of our kind a disk's metadata costs
  // 2 ms a file, tmpfs 0.1).
  enum class Storage { disk, memory };
  explicit TempDir(Storage storage = Storage::disk);
  ~TempDir();
  const boost::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  boost::filesystem::path path_;
};

// Removes every image carrying all `labels`, children before parents (an
// image with a child cannot be removed, forced or not). Returns how many are
// left.
std::size_t remove_images(docker::Client& client, const docker::Labels& labels);

class EngineFixture {
 public:
  EngineFixture();
  ~EngineFixture();

  docker::Client client;
  // ce-run.test=<unique per fixture>: on every container and image made here.
  const docker::Labels& labels() const { return labels_; }

  // Creates a container with the test label (and the spec's own labels).
  std::string create(docker::ContainerSpec spec);
  // create + start of busybox:latest running `sleep` as PID 1 under init.
  std::string start_busybox(std::vector<docker::Bind> binds = {});
  // Runs a command and returns its exit code, collecting stdout and stderr.
  int exec(const std::string& container, std::vector<std::string> cmd, std::string* out = nullptr,
           std::string* err = nullptr);

 private:
  docker::Labels labels_;
};

// KEY's value in `scripts/start-swarm env` (CE_SWARM_REGISTRY, ...).
std::string swarm_setting(const std::string& key);

}  // namespace ce::test
