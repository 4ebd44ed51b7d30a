// Computations for end-to-end tests: a computation directory in a fresh Git
// repository, named uniquely, whose containers and images (everything
// ce-run labels with its name) are removed when the test ends; and a
// CompEval call of one with its own GFS.
#pragma once

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
};

// A CompEval computation: two inputs, two outputs; each run of exec is
// counted in $GFSDIR/runs.
extern const char* const pair_exec;

struct GfsCall {
  Computation c;
  TempDir gfs, data;
  std::string a, b;
  explicit GfsCall(const std::string& exec = pair_exec, std::map<std::string, std::string> extra = {});
  // --gfs GFS EXTRA... COMPDIR A B
  RunResult run(std::vector<std::string> extra = {});
  std::vector<std::string> args(std::vector<std::string> extra = {});
  int runs();
  // The paths of `ce-run` output lines "PATH STATUS".
  static std::vector<std::string> paths(const std::string& out);
};

std::string slurp(const std::string& path);

}  // namespace ce::test
