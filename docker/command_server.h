// Many commands through one exec: `ce-run-supervise --serve` (supervise.cc)
// started once in a container, each command then a request on its standard
// input. A task's calls of one computation run their commands this way, so
// each costs no exec of the engine's own (a runc exec is most of a warm
// call's time). Each command still runs under a supervisor of its own, as
// run_supervised_exec's does: cancelling it, or closing the server (its
// destruction, or ce-run's death), stops its whole tree.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "docker/cancellation.h"
#include "docker/client.h"

namespace ce::docker {

class CommandServer {
 public:
  // Starts the server in `container` with `spec`'s user, environment and
  // working directory (its cmd is ignored). Throws EngineError.
  CommandServer(Client& client, const std::string& container, const ExecSpec& spec, const std::string& supervisor);
  ~CommandServer();
  CommandServer(const CommandServer&) = delete;
  CommandServer& operator=(const CommandServer&) = delete;

  // Runs `argv` (from any thread, many at once): its output to `sink`, its
  // exit code back (128+N for a signal; 143 once cancelled). Throws
  // EngineError(unreachable) when the server went away meanwhile (the
  // engine died or the container was removed): the command's result is
  // unknown.
  int run(const std::vector<std::string>& argv, const OutputSink& sink, Cancellation* cancel);

  bool alive() const;
  const std::string& exec_id() const;
  const std::string& container() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ce::docker
