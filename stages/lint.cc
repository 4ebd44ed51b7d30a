#include "stages/lint.h"

#include <algorithm>
#include <string>

#include "stages/stage_key.h"

namespace ce::stages {

namespace {

bool is_commit_id(const std::string& word) {
  return word.size() >= 7 && word.size() <= 64 &&
         std::all_of(word.begin(), word.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// The words of a command after wrappers that run another command.
std::vector<std::string> unwrap(const std::vector<std::string>& words) {
  std::size_t i = 0;
  while (i < words.size()) {
    const auto& w = words[i];
    if (w == "sudo" || w == "env" || w == "nice" || w == "time" || w == "command" || w == "exec" ||
        w.find('=') != std::string::npos) {
      ++i;
    } else {
      break;
    }
  }
  return {words.begin() + static_cast<std::ptrdiff_t>(i), words.end()};
}

// For `git [-C dir] [-c k=v] SUB ARGS...`: SUB and the index of its first argument.
std::pair<std::string, std::size_t> git_subcommand(const std::vector<std::string>& words) {
  std::size_t i = 1;
  while (i < words.size()) {
    const auto& w = words[i];
    if (w == "-C" || w == "-c" || w == "--git-dir" || w == "--work-tree") {
      i += 2;
    } else if (!w.empty() && w[0] == '-') {
      ++i;
    } else {
      return {w, i + 1};
    }
  }
  return {{}, words.size()};
}

struct Found {
  int line, column;
  std::vector<std::string> words;
  bool in_step;
};

bool is_declaration(const std::string& word) {
  static const char* const quiet[] = {"export", "readonly", "declare", "typeset", "local", "set", "shopt",
                                      "source", ".",        "umask",   "alias",   "trap",  ":",   "true",
                                      "cd",     "unset",    "hash",    "ulimit",  "unalias"};
  for (const char* q : quiet)
    if (word == q) return true;
  return false;
}

bool is_function_definition(const Unit& unit) {
  const auto& n = unit.normalized;
  return n.rfind("function ", 0) == 0 || n.find(" ( ) ") != std::string::npos;
}

}  // namespace

std::vector<Diagnostic> lint(const SetupScript& script) {
  std::vector<Diagnostic> out;
  auto warn = [&](int line, int column, std::string message) { out.push_back({line, column, std::move(message)}); };

  // Every command of the script, in order.
  std::vector<Found> commands;
  std::vector<bool> unit_is_step(script.parsed.units.size(), false);
  for (const auto& step : script.steps) unit_is_step[step.unit] = true;
  for (std::size_t u = 0; u < script.parsed.units.size(); ++u)
    for (const auto& c : script.parsed.units[u].commands)
      commands.push_back({c.line, c.column, unwrap(c.words), unit_is_step[u]});

  for (std::size_t i = 0; i < commands.size(); ++i) {
    const auto& words = commands[i].words;
    if (words.empty()) continue;
    if (words[0] == "git") {
      auto [sub, arg] = git_subcommand(words);
      if (sub == "clone") {
        bool pinned = std::any_of(words.begin(), words.end(), [](const std::string& w) {
          return w.rfind("--revision", 0) == 0;
        });
        for (std::size_t j = i + 1; j < commands.size() && !pinned; ++j) {
          const auto& later = commands[j].words;
          if (later.empty() || later[0] != "git") continue;
          auto [later_sub, later_arg] = git_subcommand(later);
          if (later_sub != "checkout" && later_sub != "switch" && later_sub != "reset") continue;
          for (std::size_t k = later_arg; k < later.size(); ++k)
            if (is_commit_id(later[k]) || later[k].find('$') != std::string::npos) pinned = true;
        }
        if (!pinned)
          warn(commands[i].line, commands[i].column,
               "`git clone' is not pinned to a commit: check out an explicit commit id after it (e.g. "
               "git -C DIR checkout 1a2b3c4d), so that a new upstream commit cannot change a cached stage "
               "and a change of the pinned id re-runs it");
      } else if (sub == "checkout" || sub == "switch" || (sub == "reset" && arg < words.size())) {
        std::string target;
        for (std::size_t k = arg; k < words.size(); ++k) {
          if (words[k] == "--") break;
          if (!words[k].empty() && words[k][0] == '-') continue;
          target = words[k];
          break;
        }
        if (!target.empty() && !is_commit_id(target) && target.find('$') == std::string::npos)
          warn(commands[i].line, commands[i].column,
               "`git " + sub + " " + target + "' follows a moving name: use an explicit commit id, so that "
               "the script's own commit says exactly which code runs");
      } else if (sub == "pull") {
        warn(commands[i].line, commands[i].column,
             "`git pull' fetches whatever upstream has now: check out an explicit commit id instead");
      }
    }
    if ((words[0] == "apt-get" || words[0] == "apt" || words[0] == "aptitude") &&
        std::find(words.begin(), words.end(), "install") != words.end()) {
      bool yes = std::any_of(words.begin(), words.end(), [](const std::string& w) {
        if (w == "--yes" || w == "--assume-yes") return true;
        return w.size() > 1 && w[0] == '-' && w[1] != '-' && w.find('y') != std::string::npos;
      });
      if (!yes)
        warn(commands[i].line, commands[i].column,
             "`" + words[0] + " install' without -y waits for an answer no one gives in a build: add -y");
    }
  }

  // COMPDIR in stages.
  for (const auto& step : script.steps) {
    if (step.kind != StepKind::stage || !stage_reads_compdir(script, step)) continue;
    std::string why = step.reads_compdir ? "it reads $COMPDIR" : "a line before it that it depends on reads $COMPDIR";
    warn(step.first_line, step.first_column,
         "stage " + std::to_string(step.stage_number) + " is rebuilt, with every stage after it, on each commit "
         "that changes the computation's files: " + why +
             "; read COMPDIR in an everytime step after the stages if you can");
  }

  // Context with side effects; steps after an exit.
  const Unit* exit_unit = nullptr;
  for (auto u : script.context_units) {
    const Unit& unit = script.parsed.units[u];
    int steps_after = 0;
    for (const auto& step : script.steps)
      if (step.unit > u) ++steps_after;
    const std::string& n = unit.normalized;
    if (!exit_unit && n.rfind("exit", 0) == 0 && (n.size() == 4 || n[4] == ' ') &&
        n.find("&&") == std::string::npos && n.find("||") == std::string::npos)
      exit_unit = &unit;  // an unconditional exit
    if (is_function_definition(unit) || steps_after == 0) continue;
    bool quiet = true;
    for (const auto& c : unit.commands) {
      auto words = unwrap(c.words);
      bool assignments_only = words.empty();
      if (!(assignments_only || is_declaration(words[0]))) quiet = false;
    }
    if (unit.normalized.find("$(") != std::string::npos || unit.normalized.find('`') != std::string::npos)
      quiet = false;
    if (!quiet)
      warn(unit.first_line, unit.first_column,
           "this line is not a step, so it runs again before each of the " + std::to_string(steps_after) +
               " steps after it: prefix it with `next_stage &&' to run it once, or `everytime &&' to run it "
               "on every run");
  }
  if (exit_unit) {
    for (const auto& step : script.steps) {
      if (step.unit <= static_cast<std::size_t>(exit_unit - script.parsed.units.data())) continue;
      warn(step.first_line, step.first_column,
           "this step never runs: line " + std::to_string(exit_unit->first_line) +
               " exits the script before it; remove that exit");
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return out;
}

}  // namespace ce::stages
