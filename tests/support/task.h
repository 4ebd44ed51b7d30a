// CompEval tasks for end-to-end tests: a task directory in a fresh Git
// repository (its computations plain directories of it, each named
// uniquely in docker.conf), its own GFS, and the cleanup of every container
// and image ce-run made for its computations.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "docker/client.h"
#include "support/ce_run.h"
#include "support/engine_fixture.h"

namespace ce::test {

class TaskDir {
 public:
  TaskDir();
  ~TaskDir();
  TaskDir(const TaskDir&) = delete;
  TaskDir& operator=(const TaskDir&) = delete;

  std::string path() const { return dir.str(); }
  // computations/NAME: a CompEval computation on busybox whose exec is
  // `body` (sh; $1.. are the inputs, then the outputs); each run appends its
  // arguments to /tmp/runs in its container.
  void computation(const std::string& name, const std::vector<std::string>& inputs,
                   const std::vector<std::string>& outputs, const std::string& body, const std::string& setup = {});
  // A node at `path` ("workflow", "workflow/inputs/00-a"); `outputs`: its
  // selection file's text.
  void node(const std::string& path, const std::string& kind, const std::string& value,
            const std::optional<std::string>& outputs = std::nullopt);
  void file(const std::string& path, const std::string& content);
  void inputs(const std::vector<std::string>& names);
  // Commits everything (making the repository the first time).
  void commit();
  // A file for a task input, in a directory of its own.
  std::string data(const std::string& name, const std::string& content);
  // The name docker.conf gives computations/NAME (c_<that> in the GFS).
  std::string full_name(const std::string& name) const { return prefix_ + "-" + name; }
  // Runs of computations/NAME's exec so far, in its containers.
  int runs(const std::string& name);
  // ce-run --gfs GFS ARGS...
  RunResult run(std::vector<std::string> args);

  TempDir dir, gfs, input_dir;
  docker::Client client;

 private:
  std::string prefix_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> pending_;
  bool made_ = false;
};

// A task of two calls on one input, text: upper (text -> big, in capitals;
// it prints upper-said-BIG) and, at the root, count (text, big -> n, the
// bytes of both). `first` runs first in each exec (e.g. "sleep 1; ").
// Committed.
void upper_count_task(TaskDir& t, const std::string& first = "");

// The files below `dir` (relative paths, sorted): what a run left there.
std::vector<std::string> files_below(const std::string& dir);

}  // namespace ce::test
