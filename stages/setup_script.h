// docker-setup.sh as ce-run reads it: its top-level commands sorted into
// steps (`next_stage && ...` stages, `everytime && ...` steps) and context
// (every other top-level command, replayed before each step after it).
// docs/setup-script.md is the user's reference.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "stages/script_parser.h"

namespace ce::stages {

enum class StepKind { stage, everytime };

struct Step {
  StepKind kind = StepKind::stage;
  int index = 0;         // 1-based position among all steps
  int stage_number = 0;  // stages: 1, 2, ...; everytime steps: the number of stages before them
  std::size_t unit = 0;  // index into parsed.units
  int first_line = 0;
  int last_line = 0;
  int first_column = 0;
  std::string text;  // normalised command after `next_stage &&` / `everytime &&`
  bool reads_compdir = false;
};

struct Diagnostic {
  int line = 0;
  int column = 0;
  std::string message;
};

struct SetupScript {
  std::string origin;  // the name used in messages, e.g. "docker-setup.sh"
  std::string source;
  ParsedScript parsed;
  std::vector<Step> steps;
  std::vector<std::size_t> context_units;  // indices into parsed.units, in order
  std::vector<Diagnostic> warnings;        // from parsing (lint is separate)

  int stage_count() const;
  bool context_reads_compdir(std::size_t before_unit) const;
  std::string unit_text(std::size_t unit) const;  // the unit's source text
  // "docker-setup.sh:7" or "docker-setup.sh:7-9"
  std::string lines_of(const Step& step) const;
};

// "ORIGIN:LINE:COL: what; what to do"
class ScriptError : public std::runtime_error {
 public:
  ScriptError(std::string origin, int line, int column, const std::string& message)
      : std::runtime_error(origin + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message),
        line_(line),
        column_(column) {}
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  int line_, column_;
};

// Parses and classifies a setup script. Throws ScriptError.
SetupScript parse_setup_script(std::string_view text, std::string origin);
// The entry point for tests, as ninja's ParseTest: origin "docker-setup.sh".
SetupScript parse_setup_test(std::string_view text);
// Reads COMPDIR/docker-setup.sh; a missing file is an empty script.
SetupScript load_setup_script(const std::string& path, const std::string& origin);

enum class Shell { bash, posix_sh };

// The program that runs `step` with `shell -c PROGRAM docker-setup.sh`: the
// script with every byte blanked (newlines kept) but the context before the
// step and the step itself, so that line numbers in the shell's messages and
// $LINENO are those of the file; the helpers next_stage and everytime are
// defined at the start of line 1.
std::string step_program(const SetupScript& script, const Step& step);

}  // namespace ce::stages
