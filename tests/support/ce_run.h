// Runs the built ce-run binary as a user would, for end-to-end tests, and
// makes computation directories in fresh Git repositories.
#pragma once

#include <boost/filesystem.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ce::test {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `ce-run ARGS...` (arguments quoted for the shell) and waits.
RunResult run_ce(const std::vector<std::string>& args);
// The same with NAME=VALUE variables added to its environment.
RunResult run_ce_env(const std::vector<std::string>& env, const std::vector<std::string>& args);
// Starts it in the background; returns its pid. Output goes to /dev/null,
// or stderr to `stderr_file`; `env` adds NAME=VALUE variables.
int spawn_ce(const std::vector<std::string>& args, const std::string& stderr_file = {},
             const std::vector<std::string>& env = {});

// Writes files (path relative to dir -> content; a name ending in "exec" is
// made executable), then `git init` and commits them all.
void make_repo(const boost::filesystem::path& dir, const std::map<std::string, std::string>& files);
// Runs a shell command in dir; throws if it fails.
void sh(const boost::filesystem::path& dir, const std::string& command);

std::string ce_run_binary();

// For a case that must not need the engine: DOCKER_HOST names a socket that
// does not exist, here and in each ce-run it starts, so any use of the
// engine fails (restored when the case ends).
class NoEngine {
 public:
  NoEngine();
  ~NoEngine();
  NoEngine(const NoEngine&) = delete;
  NoEngine& operator=(const NoEngine&) = delete;

 private:
  std::optional<std::string> old_;
};

}  // namespace ce::test
