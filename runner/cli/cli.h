// The ce-run command: arguments into a Command, then run it.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "runner/report.h"  // exit_code

namespace ce::runner {


enum class Verbosity { quiet, normal, verbose };

struct Command {
  enum class Action { run, lint, status, gc, why, shell, log, sym, graph, fleet_status, serve, help, version };
  Action action = Action::run;
  Verbosity verbosity = Verbosity::normal;
  bool dry_run = false;
  bool allow_dirty = false;
  bool keep_build_container = false;
  bool incremental = false;  // --incremental
  bool verify = false;       // --verify
  bool gc_results = false;   // gc --results
  bool fail_fast = false;    // --fail-fast (a task)
  bool swarm = false;        // --swarm: calls run as jobs of the swarm (docs/fleet.md)
  std::size_t jobs = 0;      // -j N (a task); 0: the number of cores
  std::string junit;         // --junit FILE (a task)
  std::string output_file;   // graph -o FILE
  std::string node;          // log TASKDIR NODE
  std::string gfs;     // --gfs DIR
  std::string report;  // --report FILE
  std::size_t gc_keep = 3;  // gc --keep N
  std::string listen;     // serve --listen ADDR:PORT
  std::string state_dir;  // serve --state DIR
  std::string conf;       // serve --conf FILE
  std::string compdir;  // or TASKDIR
  std::vector<std::string> inputs;
  std::vector<std::string> command;  // after "--"
};

// Throws UsageError.
Command parse_command_line(const std::vector<std::string>& args);

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The --help text.
const char* usage();

// Runs a parsed command; returns the process exit code.
int run(const Command& command);

// main(): parse, run, catch once, print "ce-run: error: ...".
int main(int argc, char** argv);

}  // namespace ce::runner
