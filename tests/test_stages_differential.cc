// The splitter against bash itself, on the shell scripts this machine has
// (written by others, in many styles) and on tests/differential/corpus/
// (patterns that must stay covered whatever the machine has). For each
// script that `bash -n` accepts:
//  - after which lines bash has read complete commands must be exactly the
//    lines after which our split leaves no command open;
//  - every command we split off must parse alone in bash.
// Bash answers through tests/differential/bash-probe: one process for all the
// scripts of a worker, plus one `bash -n` per script (see how it works there).
//
// The machine's scripts must hold at least 40,000 lines (all those found;
// the ones `bash -n` accepts are compared, 98% of them on a Debian 12 build
// machine), so that the check cannot shrink unnoticed on a machine with
// fewer packages.
//
// CE_DIFFERENTIAL_SHARD=K/N (default 1/1) checks only the machine's scripts
// i (0-based, sorted by path) with i % N == K-1, so that ctest can run the
// check as N tests side by side; the committed corpus is checked in every
// shard, and the 40,000-line floor applies to the whole corpus.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <string_view>

#include "stages/script_parser.h"
#include "support/engine_fixture.h"

namespace fs = boost::filesystem;
using namespace ce::stages;

namespace {

constexpr std::size_t min_corpus_lines = 40000;

std::string read_file(const fs::path& path) {
  std::ifstream in(path.string(), std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// For sh: 'it'\''s'.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command with standard input from a file; returns its standard
// output, split into lines.
std::vector<std::string> capture_lines(const std::string& command, const fs::path& input) {
  std::string full = command + " < " + quoted(input.string()) + " 2>/dev/null";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return {};
  std::string out;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Whether `path` (a regular file) holds 20 to 60,000 bytes and its first
// line is a #! naming sh or bash.
bool is_shell_script(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  char head[256];  // the kernel reads no more of a #! line either
  ssize_t n = ::read(fd, head, sizeof head);
  struct stat st;
  bool candidate = n >= 2 && head[0] == '#' && head[1] == '!' && ::fstat(fd, &st) == 0 && st.st_size >= 20 &&
                   st.st_size <= 60000;
  ::close(fd);
  if (!candidate) return false;
  std::string_view first(head, static_cast<std::size_t>(n));
  first = first.substr(0, first.find('\n'));
  return first.find("/sh") != std::string_view::npos || first.find("bash") != std::string_view::npos;
}

// Every shard looks at the 120,000 files under the roots: with readdir's
// file types and one open and read per file, in about 1 s, against 3 s with
// boost's iterator and its status calls. Symbolic links are not followed.
// Names that never hold a shell script on a Debian machine (checked: only two
// Python files of google-cloud-sdk with an sh shebang, which bash refuses).
// Most of the 118,000 files scanned are such; not opening them keeps the scan
// cheap where the page cache is cold and the disk slow (14 s, else 1 s).
bool never_a_script(std::string_view name) {
  static const std::set<std::string_view> extensions = {
      "gz",  "xz",  "bz2", "zst", "py",  "pyc", "png", "jpg", "gif", "svg", "mo",  "pas", "pp",  "ppu",
      "inc", "yaml", "rst", "json", "vim", "xml", "txt", "md",  "html", "css", "js",  "pl",  "pm",  "cmake",
      "o",   "a",   "so",  "la",  "pc",  "h",   "bc",  "ads", "adb", "ali", "ttf", "jar", "class", "pdf"};
  auto dot = name.rfind('.');
  return dot != std::string_view::npos && extensions.count(name.substr(dot + 1)) > 0;
}

void find_shell_scripts(const std::string& dir, std::vector<fs::path>& found) {
  DIR* listing = ::opendir(dir.c_str());
  if (!listing) return;
  std::vector<std::string> subdirectories;
  while (const dirent* entry = ::readdir(listing)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + std::string(name);
    unsigned char type = entry->d_type;
    struct stat st;
    if (type == DT_UNKNOWN && ::lstat(path.c_str(), &st) == 0)
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    if (type == DT_DIR) {
      subdirectories.push_back(std::move(path));
    } else if (type == DT_REG && !never_a_script(name) && is_shell_script(path)) {
      found.emplace_back(path);
    }
  }
  ::closedir(listing);
  for (const auto& sub : subdirectories) find_shell_scripts(sub, found);
}

std::vector<fs::path> machine_scripts() {
  std::vector<fs::path> found;
  for (const char* root : {"/usr/bin", "/usr/sbin", "/usr/share", "/usr/lib", "/etc"}) find_shell_scripts(root, found);
  std::sort(found.begin(), found.end());
  return found;
}

fs::path tests_dir() { return fs::path(__FILE__).parent_path(); }

std::vector<fs::path> committed_scripts() {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(tests_dir() / "differential" / "corpus"))
    if (entry.path().extension() == ".sh") found.push_back(entry.path());
  std::sort(found.begin(), found.end());
  return found;
}

struct Shard {
  std::size_t number = 1;  // K: 1..count
  std::size_t count = 1;   // N
};

// CE_DIFFERENTIAL_SHARD: "K/N", or unset for all.
Shard shard_from_environment(std::string& error) {
  Shard shard;
  const char* env = std::getenv("CE_DIFFERENTIAL_SHARD");
  if (!env || !*env) return shard;
  std::string text(env);
  auto slash = text.find('/');
  auto is_number = [](const std::string& s) {
    return !s.empty() && s.size() < 6 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (slash != std::string::npos && is_number(text.substr(0, slash)) && is_number(text.substr(slash + 1))) {
    shard.number = std::stoul(text.substr(0, slash));
    shard.count = std::stoul(text.substr(slash + 1));
    if (shard.number >= 1 && shard.number <= shard.count) return shard;
  }
  error = "CE_DIFFERENTIAL_SHARD=" + text + " is not K/N with 1 <= K <= N, e.g. 2/4";
  return shard;
}

struct Script {
  fs::path path;
  bool committed = false;  // from tests/differential/corpus: bash must accept it
};

struct Tally {
  std::size_t compared = 0;  // scripts bash accepts, compared
  std::size_t lines = 0;     // their lines
  std::size_t refused = 0;   // scripts `bash -n` refuses, not compared
  std::vector<std::string> problems;
};

// Lines after which our split has no command open.
std::set<int> our_complete_lines(const ParsedScript& parsed, const std::string& text) {
  int total = static_cast<int>(count_lines(text)) + (text.empty() || text.back() == '\n' ? 0 : 1);
  std::set<int> open;
  for (const auto& u : parsed.units)
    for (int line = u.first_line; line < u.last_line; ++line) open.insert(line);
  std::set<int> complete;
  for (int line = 1; line <= total; ++line)
    if (!open.count(line)) complete.insert(line);
  return complete;
}

// Compares `scripts` with bash; `dir` holds the files handed to bash-probe.
Tally check_scripts(const std::vector<Script>& scripts, const fs::path& dir) {
  Tally tally;
  std::string probe = quoted((tests_dir() / "differential" / "bash-probe").string());
  // bash-probe keeps `bash -n`'s messages in $TMPDIR: ours, removed after.
  std::string command_prefix = "TMPDIR=" + quoted(dir.string()) + " " + probe;

  fs::path paths_file = dir / "paths";
  {
    std::ofstream out(paths_file.string(), std::ios::binary);
    for (const auto& s : scripts) out << s.path.string() << '\0';
  }
  auto answers = capture_lines(command_prefix + " lines", paths_file);
  if (answers.size() != scripts.size()) {
    tally.problems.push_back("tests/differential/bash-probe lines answered for " + std::to_string(answers.size()) +
                             " of " + std::to_string(scripts.size()) + " scripts: is bash 5 installed?");
    return tally;
  }

  struct Parsed {
    const Script* script;
    std::string text;
    ParsedScript parsed;
  };
  std::vector<Parsed> agreed;  // whose complete lines match bash's: their units are checked next
  for (std::size_t i = 0; i < scripts.size(); ++i) {
    const Script& script = scripts[i];
    std::string where = script.path.string() + ": ";
    std::istringstream answer(answers[i]);
    std::string verdict;
    answer >> verdict;
    if (verdict == "rejected") {
      ++tally.refused;
      if (script.committed) tally.problems.push_back(where + "bash -n refuses this committed script");
      continue;
    }
    std::set<int> bash_lines;
    for (int line; answer >> line;) bash_lines.insert(line);
    std::string text = read_file(script.path);
    ++tally.compared;
    tally.lines += count_lines(text);
    ParsedScript parsed;
    try {
      parsed = parse_script(text);
    } catch (const SyntaxError& e) {
      tally.problems.push_back(where + "rejected what bash accepts: " + std::to_string(e.where().line) + ":" +
                               e.message());
      continue;
    }
    auto ours = our_complete_lines(parsed, text);
    if (ours != bash_lines) {
      std::vector<int> diff;
      std::set_symmetric_difference(ours.begin(), ours.end(), bash_lines.begin(), bash_lines.end(),
                                    std::back_inserter(diff));
      tally.problems.push_back(where + "complete-line sets differ first at line " + std::to_string(diff.front()) +
                               (ours.count(diff.front()) ? " (we end a command there, bash does not)"
                                                         : " (bash ends a command there, we do not)"));
      continue;
    }
    agreed.push_back({&script, std::move(text), std::move(parsed)});
  }

  // Each unit alone must parse in bash.
  fs::path units_file = dir / "units";
  std::size_t unit_count = 0;
  {
    std::ofstream out(units_file.string(), std::ios::binary);
    for (const auto& p : agreed) {
      for (const auto& u : p.parsed.units) {
        out << unit_source(p.text, u) << '\n';
        out.put('\0');
        ++unit_count;
      }
    }
  }
  auto unit_answers = capture_lines(command_prefix + " units", units_file);
  if (unit_answers.size() != unit_count) {
    tally.problems.push_back("tests/differential/bash-probe units answered for " +
                             std::to_string(unit_answers.size()) + " of " + std::to_string(unit_count) +
                             " commands: is bash 5 installed?");
    return tally;
  }
  std::size_t next = 0;
  for (const auto& p : agreed) {
    bool reported = false;
    for (const auto& u : p.parsed.units) {
      if (unit_answers[next++] != "ok" && !reported) {
        tally.problems.push_back(p.script->path.string() + ": bash does not parse our command at line " +
                                 std::to_string(u.first_line) + " alone");
        reported = true;
      }
    }
  }
  return tally;
}

}  // namespace

TEST_CASE("the split matches bash's on the machine's own shell scripts", "[differential]") {
  std::string shard_error;
  Shard shard = shard_from_environment(shard_error);
  if (!shard_error.empty()) FAIL(shard_error);

  auto all = machine_scripts();
  std::size_t corpus_lines = 0;
  for (const auto& path : all) corpus_lines += count_lines(read_file(path));
  if (corpus_lines < min_corpus_lines) {
    FAIL("only " << corpus_lines << " lines of shell scripts (" << all.size()
                 << " scripts) under /usr/bin, /usr/sbin, /usr/share, /usr/lib and /etc; the differential check "
                    "needs at least "
                 << min_corpus_lines
                 << ": run scripts/install-deps and install packages that ship shell scripts, e.g. `apt-get "
                    "install git gettext ucf linux-perf bats` (about 22,000 lines on Debian 12)");
  }

  std::vector<Script> chosen;
  for (const auto& path : committed_scripts()) chosen.push_back({path, true});
  std::size_t committed = chosen.size();
  for (std::size_t i = 0; i < all.size(); ++i)
    if (i % shard.count == shard.number - 1) chosen.push_back({all[i], false});

  // Two workers: the machine has two cores.
  ce::test::TempDir dir;
  std::vector<Script> halves[2];
  for (std::size_t i = 0; i < chosen.size(); ++i) halves[i % 2].push_back(chosen[i]);
  for (int w = 0; w < 2; ++w) fs::create_directories(dir.path() / std::to_string(w));
  auto other = std::async(std::launch::async, check_scripts, halves[1], dir.path() / "1");
  Tally tally = check_scripts(halves[0], dir.path() / "0");
  Tally second = other.get();
  tally.compared += second.compared;
  tally.lines += second.lines;
  tally.refused += second.refused;
  tally.problems.insert(tally.problems.end(), second.problems.begin(), second.problems.end());

  std::cout << "differential shard " << shard.number << "/" << shard.count << ": " << tally.compared
            << " scripts (" << committed << " of them committed), " << tally.lines << " lines compared with bash; "
            << tally.refused << " scripts refused by bash -n; " << tally.problems.size()
            << " disagreements. Whole corpus: " << all.size() << " scripts, " << corpus_lines
            << " lines on this machine (at least " << min_corpus_lines << " needed)\n";
  for (const auto& p : tally.problems) UNSCOPED_INFO(p);
  CHECK(tally.problems.empty());
}
