// The splitter against bash itself, on the shell scripts this machine has
// (written by others, in many styles). For each script that `bash -n`
// accepts:
//  - after which lines bash has read complete commands (found by
//    tests/differential/bash-complete-lines) must be exactly the lines after
//    which our split leaves no command open;
//  - every command we split off must parse alone in bash.
// CE_DIFFERENTIAL_LIMIT caps the number of scripts (default 400, spread
// evenly over the sorted list); 0 means all.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <set>
#include <sstream>

#include "stages/script_parser.h"
#include "support/engine_fixture.h"

namespace fs = boost::filesystem;
using namespace ce::stages;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path.string(), std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs a shell command; returns its standard output.
std::string capture(const std::string& command, const std::string& input_file = {}) {
  std::string full = command + (input_file.empty() ? "" : " < '" + input_file + "'") + " 2>/dev/null";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return {};
  std::string out;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

bool bash_accepts(const fs::path& script) {
  // bash -n exits 0 after some errors in [[ ]]: count any message as a refusal.
  std::string out = capture("bash -n '" + script.string() + "' 2>&1 && echo __accepted");
  return out == "__accepted\n";
}

std::vector<fs::path> machine_scripts() {
  std::vector<fs::path> found;
  for (const char* root : {"/usr/bin", "/usr/sbin", "/usr/share", "/usr/lib", "/etc"}) {
    boost::system::error_code ec;
    for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
         it != end; it.increment(ec)) {
      if (ec) break;
      const auto& path = it->path();
      if (fs::is_symlink(path, ec) || !fs::is_regular_file(path, ec)) continue;
      auto size = fs::file_size(path, ec);
      if (ec || size < 20 || size > 60000) continue;
      std::ifstream in(path.string(), std::ios::binary);
      std::string first;
      std::getline(in, first);
      if (first.rfind("#!", 0) == 0 &&
          (first.find("/sh") != std::string::npos || first.find("bash") != std::string::npos))
        found.push_back(path);
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string tests_dir() { return fs::path(__FILE__).parent_path().string(); }

// Lines after which our split has no command open.
std::set<int> our_complete_lines(const ParsedScript& parsed, const std::string& text) {
  int total = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + (text.empty() || text.back() == '\n' ? 0 : 1);
  std::set<int> open;
  for (const auto& u : parsed.units)
    for (int line = u.first_line; line < u.last_line; ++line) open.insert(line);
  std::set<int> complete;
  for (int line = 1; line <= total; ++line)
    if (!open.count(line)) complete.insert(line);
  return complete;
}

struct Verdict {
  std::string script;
  std::string problem;  // empty: agrees with bash
  std::size_t lines = 0;
};

Verdict check_script(const fs::path& path) {
  Verdict v{path.string(), {}};
  std::string text = read_file(path);
  v.lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  ParsedScript parsed;
  try {
    parsed = parse_script(text);
  } catch (const SyntaxError& e) {
    v.problem = "rejected what bash accepts: " + std::to_string(e.where().line) + ":" + e.message();
    return v;
  }
  std::set<int> bash_lines;
  std::istringstream lines(capture("'" + tests_dir() + "/differential/bash-complete-lines' '" + path.string() + "'"));
  for (int line; lines >> line;) bash_lines.insert(line);
  auto ours = our_complete_lines(parsed, text);
  if (ours != bash_lines) {
    std::vector<int> diff;
    std::set_symmetric_difference(ours.begin(), ours.end(), bash_lines.begin(), bash_lines.end(),
                                  std::back_inserter(diff));
    v.problem = "complete-line sets differ first at line " + std::to_string(diff.front()) +
                (ours.count(diff.front()) ? " (we end a command there, bash does not)"
                                          : " (bash ends a command there, we do not)");
    return v;
  }
  // Each unit alone must parse in bash.
  ce::test::TempDir dir;
  std::string units_file = (dir.path() / "units").string();
  {
    std::ofstream out(units_file, std::ios::binary);
    for (const auto& u : parsed.units) {
      out << unit_source(text, u) << '\n';
      out.put('\0');
    }
  }
  std::istringstream answers(capture("'" + tests_dir() + "/differential/bash-units-parse'", units_file));
  std::string answer;
  for (std::size_t i = 0; std::getline(answers, answer); ++i) {
    if (answer != "ok") {
      v.problem = "bash does not parse our command at line " + std::to_string(parsed.units[i].first_line) + " alone";
      return v;
    }
  }
  return v;
}

}  // namespace

TEST_CASE("the split matches bash's on the machine's own shell scripts", "[differential]") {
  auto all = machine_scripts();
  INFO("shell scripts found on this machine: " << all.size());
  REQUIRE(all.size() >= 100);
  std::size_t limit = 400;
  if (const char* env = std::getenv("CE_DIFFERENTIAL_LIMIT")) limit = std::strtoul(env, nullptr, 10);
  std::vector<fs::path> chosen;
  if (limit == 0 || limit >= all.size()) {
    chosen = all;
  } else {
    for (std::size_t i = 0; i < limit; ++i) chosen.push_back(all[i * all.size() / limit]);
  }
  std::vector<fs::path> accepted;
  for (const auto& p : chosen)
    if (bash_accepts(p)) accepted.push_back(p);
  REQUIRE(accepted.size() >= 100);

  // Two workers: the machine has two cores.
  std::vector<Verdict> verdicts(accepted.size());
  auto work = [&](std::size_t first) {
    for (std::size_t i = first; i < accepted.size(); i += 2) verdicts[i] = check_script(accepted[i]);
  };
  auto other = std::async(std::launch::async, work, 1);
  work(0);
  other.get();

  std::size_t lines = 0;
  std::vector<std::string> problems;
  for (const auto& v : verdicts) {
    lines += v.lines;
    if (!v.problem.empty()) problems.push_back(v.script + ": " + v.problem);
  }
  std::cout << "differential: " << accepted.size() << " scripts, " << lines << " lines compared with bash; "
            << problems.size() << " disagreements\n";
  for (const auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());
}
