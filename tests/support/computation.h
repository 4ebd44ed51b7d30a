// Computations for end-to-end tests: a computation directory in a fresh Git
// repository, named uniquely, whose containers and images (everything
// ce-run labels with its name) are removed when the test ends; and a
// CompEval call of one with its own GFS.
//
// The GFS is mounted read-only in the containers (a security fix), so a
// test's command that leaves a trace for the test (a run counted, a marker
// that it started) writes it to the container's own /tmp, and the test
// reads it through the engine: read_in_container / exists_in_container, or over all of a
// computation's run containers, Computation::count_lines_in_containers and
// exists_in_containers. (Files the test creates in the GFS for the container
// to read, such as a "fast" marker that releases a waiting command, need
// nothing of the sort.)
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "docker/client.h"
#include "support/ce_run.h"
#include "support/engine_fixture.h"

namespace ce::test {

struct Computation {
  TempDir dir;
  std::string name;
  docker::Client client;

  // docker.conf names busybox:latest (or `image`) and a unique name.
  explicit Computation(const std::string& setup, const std::string& exec = "#!/bin/sh\necho \"exec: $*\"\n",
                       std::map<std::string, std::string> extra = {}, const std::string& image = "busybox:latest");
  ~Computation();
  std::string path() const { return dir.str(); }
  std::size_t images();
  std::size_t containers();
  // Writes a file and commits everything.
  void commit(const std::string& file, const std::string& content);

  // Its commits' containers (ce-run.role=run), oldest first: a new commit
  // (or new stages) gets a new one, so a trace kept across commits is in
  // several.
  std::vector<std::string> run_containers();
  // The lines of `path` in all of them (a container without the file has
  // none). A stopped container (the engine was restarted) is started to be
  // read and stopped again.
  std::vector<std::string> lines_in_containers(const std::string& path);
  int count_lines_in_containers(const std::string& path) {
    return static_cast<int>(lines_in_containers(path).size());
  }
  // Whether `path` exists in any of them that is running (a marker of a
  // command or step that runs now: a stopped container runs nothing).
  bool exists_in_containers(const std::string& path);
};

// Through the engine, as root: the content of `path` in a running
// container, empty when there is no such file; and whether it exists.
std::string read_in_container(docker::Client& client, const std::string& container, const std::string& path);
bool exists_in_container(docker::Client& client, const std::string& container, const std::string& path);

// Calls `ready` until it returns true or `seconds` have passed, at most once
// every `interval` (each call may be an exec in a container, which costs the
// shared engine some 50-100 ms). Whether it became true.
bool poll_until(const std::function<bool()>& ready, double seconds,
                std::chrono::milliseconds interval = std::chrono::milliseconds(100));

// A CompEval computation: two inputs, two outputs; each run of exec is
// counted in /tmp/runs of the computation's container.
extern const char* const pair_exec;

struct GfsCall {
  Computation c;
  TempDir gfs, data;
  std::string a, b;
  explicit GfsCall(const std::string& exec = pair_exec, std::map<std::string, std::string> extra = {});
  // --gfs GFS EXTRA... COMPDIR A B
  RunResult run(std::vector<std::string> extra = {});
  std::vector<std::string> args(std::vector<std::string> extra = {});
  // Runs of exec so far: lines of /tmp/runs in c's containers.
  int runs();
  // The paths of `ce-run` output lines "PATH STATUS".
  static std::vector<std::string> paths(const std::string& out);
};

std::string slurp(const std::string& path);

}  // namespace ce::test
