#include "stages/setup_script.h"

#include <fstream>
#include <sstream>

namespace ce::stages {

namespace {

bool is_helper(const std::string& word) { return word == "next_stage" || word == "everytime"; }

// Drops the terminating `;` of a step's normalised text: `a;` and `a` run alike.
std::string strip_terminator(std::string text) {
  while (text.size() >= 2 && text.compare(text.size() - 2, 2, " ;") == 0) text.resize(text.size() - 2);
  if (text == ";") text.clear();
  return text;
}

}  // namespace

int SetupScript::stage_count() const {
  int n = 0;
  for (const auto& s : steps)
    if (s.kind == StepKind::stage) ++n;
  return n;
}

std::string SetupScript::unit_text(std::size_t unit) const { return unit_source(source, parsed.units[unit]); }

bool SetupScript::context_reads_compdir(std::size_t before_unit) const {
  for (auto u : context_units)
    if (u < before_unit && unit_text(u).find("COMPDIR") != std::string::npos) return true;
  return false;
}

std::string SetupScript::lines_of(const Step& step) const {
  std::string out = origin + ":" + std::to_string(step.first_line);
  if (step.last_line != step.first_line) out += "-" + std::to_string(step.last_line);
  return out;
}

SetupScript parse_setup_script(std::string_view text, std::string origin) {
  SetupScript script;
  script.origin = std::move(origin);
  script.source = std::string(text);
  try {
    script.parsed = parse_script(script.source);
  } catch (const SyntaxError& e) {
    throw ScriptError(script.origin, e.where().line, e.where().column, e.message());
  }
  for (const auto& [where, message] : script.parsed.warnings)
    script.warnings.push_back({where.line, where.column, message});

  int stages = 0;
  for (std::size_t i = 0; i < script.parsed.units.size(); ++i) {
    const Unit& unit = script.parsed.units[i];
    const std::string& lead = unit.leading_word;
    bool is_step = is_helper(lead);
    if (is_step && unit.leading_operator != "&&") {
      throw ScriptError(script.origin, unit.first_line, unit.first_column,
                        "`" + lead + "' must be followed by `&&' and its command on the same line, as in `" +
                            lead + " && apt-get install -y curl'" +
                            (unit.leading_operator.empty()
                                 ? std::string("; a bare `") + lead +
                                       "' would let the lines after it run on every run"
                                 : ""));
    }
    for (std::size_t c = 0; c < unit.commands.size(); ++c) {
      const auto& command = unit.commands[c];
      if (!is_helper(command.words[0]) || (is_step && c == 0)) continue;
      throw ScriptError(script.origin, command.line, command.column,
                        "`" + command.words[0] +
                            "' may only begin a top-level line, as in `next_stage && <command>'; here it is "
                            "part of another command");
    }
    if (!is_step) {
      script.context_units.push_back(i);
      continue;
    }
    if (unit.normalized.size() >= 2 && unit.normalized.compare(unit.normalized.size() - 2, 2, " &") == 0) {
      throw ScriptError(script.origin, unit.first_line, unit.first_column,
                        "a step cannot run in the background: remove the `&' at its end");
    }
    Step step;
    step.kind = lead == "next_stage" ? StepKind::stage : StepKind::everytime;
    if (step.kind == StepKind::stage) ++stages;
    step.index = static_cast<int>(script.steps.size()) + 1;
    step.stage_number = stages;
    step.unit = i;
    step.first_line = unit.first_line;
    step.last_line = unit.last_line;
    step.first_column = unit.first_column;
    step.text = strip_terminator(unit.normalized_rest);
    step.reads_compdir = script.unit_text(i).find("COMPDIR") != std::string::npos;
    script.steps.push_back(std::move(step));
  }
  return script;
}

SetupScript parse_setup_test(std::string_view text) { return parse_setup_script(text, "docker-setup.sh"); }

SetupScript load_setup_script(const std::string& path, const std::string& origin) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    SetupScript empty;
    empty.origin = origin;
    return empty;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ScriptError(origin, 1, 1, "cannot read the file");
  return parse_setup_script(text.str(), origin);
}

std::string step_program(const SetupScript& script, const Step& step) {
  std::string program(script.source.size(), ' ');
  for (std::size_t i = 0; i < script.source.size(); ++i)
    if (script.source[i] == '\n') program[i] = '\n';
  auto keep = [&](std::size_t unit) {
    for (const auto& [b, e] : script.parsed.units[unit].spans) program.replace(b, e - b, script.source, b, e - b);
  };
  for (auto u : script.context_units)
    if (u < step.unit) keep(u);
  keep(step.unit);
  // The helpers go before the first line's text: the line count stays.
  return "next_stage() { return 0; }; everytime() { return 0; }; " + program;
}

}  // namespace ce::stages
