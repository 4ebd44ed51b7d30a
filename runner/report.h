// The --report JSON for CI (schema in docs/cli.md), written when the run
// ends, whether it succeeded or not.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
  std::string key;     // stages only
  std::string status;  // "cached" | "built" | "ran" | "planned" | "failed"
  double seconds = 0;
};

struct ReportInput {
  std::string name, path, sha1;
};

struct ReportOutput {
  std::string name, path, status;  // "cached" | "computed" | "missing"
};

struct Report {
  std::string name, dir, commit, tree, id;
  bool dirty = false;
  std::string base_image, base_image_id, final_key;
  std::string container_id;
  bool container_created = false;
  std::vector<ReportStep> steps;
  std::vector<ReportInput> inputs;
  std::vector<ReportOutput> outputs;
  std::optional<int> exit_code;
  std::string error;  // ce-run's own error message, if any
  double seconds = 0;
  // Where the time went, in the order of phase::all; only the phases that
  // ran.
  std::vector<std::pair<std::string, double>> phases;

  std::string to_json() const;
};

// Writes atomically (temporary file + rename); throws naming the path.
// Written with the invoker's rights (the path is theirs to choose), atomically.
void write_report(const std::string& path, const Report& report, const Invoker& invoker);

}  // namespace ce::runner
