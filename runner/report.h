// What a call's report says (the --report JSON for CI, schema in
// docs/cli.md): the facts a call gathers as it goes, and the one serialiser
// of a CallResult (call.h), for the command line and a service alike.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <Poco/JSON/Object.h>

#include "runner/invoker.h"

namespace ce::runner {

// The phases of a run, in order: the keys of the report's "phases".
namespace phase {
inline constexpr const char* load = "load";
inline constexpr const char* identity = "identity";
inline constexpr const char* inputs = "inputs";
inline constexpr const char* setup = "setup";
inline constexpr const char* container = "container";
inline constexpr const char* everytime = "everytime";
inline constexpr const char* command = "command";
inline constexpr const char* filing = "filing";
inline constexpr const char* all[] = {load, identity, inputs, setup, container, everytime, command, filing};
}  // namespace phase

struct ReportStep {
  int index = 0;
  std::string kind;  // "stage" | "everytime"
  int first_line = 0;
  int last_line = 0;
  int stage_number = 0;  // stages: 1, 2, ... (not in the JSON)
  std::string lines;     // "docker-setup.sh:4-9" (not in the JSON)
  std::string key;     // stages only
  std::string status;  // "cached" | "built" | "ran" | "planned" | "failed"
  double seconds = 0;
};

struct ReportInput {
  std::string name, path, sha1;
};

struct ReportFacts {
  std::string name, dir, commit, tree, id;
  bool dirty = false;
  std::string base_image, base_image_id, final_key;
  std::string container_id;
  bool container_created = false;
  // A fleet call (docs/fleet.md): the node that ran it, its job, the
  // attempts it took; empty and 0 for a local call.
  std::string node, job_image;
  int attempts = 0;
  bool adopted = false;  // the job a killed submitter left, watched to its end
  std::vector<ReportStep> steps;
  std::vector<ReportInput> inputs;
  // Where the time went, in the order of phase::all; only the phases that
  // ran.
  std::vector<std::pair<std::string, double>> phases;
  double seconds = 0;  // the whole call
};

// Exit codes of ce-run's own failures (docs/cli.md). Otherwise ce-run exits
// with the computation's code; a service reports them as its runs'.
namespace exit_code {
constexpr int runner_error = 125;  // as docker run: ce-run itself failed
constexpr int not_executable = 126;
constexpr int not_found = 127;
constexpr int timed_out = 124;      // the command ran past docker.conf's timeout, as timeout(1)
constexpr int interrupted = 130;    // SIGINT (Ctrl-C); 143 for SIGTERM
constexpr int output_closed = 141;  // stdout's reader went away, as 128+SIGPIPE
constexpr int call_failed = 1;      // a task: a call failed (its dependents were skipped)
constexpr int out_of_date = 3;      // -n: something would be computed
}  // namespace exit_code

struct CallResult;

// The exit code of `ce-run COMPDIR` for a call that ended so (signals
// aside, which the command line maps itself).
int exit_code_for(const CallResult& result);
// The report of a call that ended with the process exit code `exit_code`
// (the caller's mapping of the outcome): JSON, schema version 1.
std::string report_json(const CallResult& result, int exit_code);
// The same as an object (a task's report holds one per call).
Poco::JSON::Object::Ptr report_object(const CallResult& result, int exit_code);
// The JSON text of a report object, as report_json writes it.
std::string report_text(const Poco::JSON::Object::Ptr& report);

// Writes `text` atomically with the invoker's rights (the path is theirs
// to choose); throws naming the path.
void write_report(const std::string& path, const std::string& text, const Invoker& invoker);

}  // namespace ce::runner
