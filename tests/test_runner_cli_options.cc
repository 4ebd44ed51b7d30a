// The command line's options (no engine), and docs/cli.md kept true: every
// option --help lists, and every field the report writes, is documented.
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "runner/cli/cli.h"
#include "runner/call.h"
#include "runner/report.h"

using ce::runner::Command;
using ce::runner::parse_command_line;
using ce::runner::UsageError;

namespace {

std::string usage_error(const std::vector<std::string>& args) {
  try {
    parse_command_line(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

std::string docs_cli() {
  std::ifstream in(std::string(CE_SOURCE_DIR) + "/docs/cli.md");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every key of every object in a JSON value, arrays' elements included.
void collect_keys(const Poco::Dynamic::Var& value, std::set<std::string>& keys) {
  if (value.type() == typeid(Poco::JSON::Object::Ptr)) {
    auto object = value.extract<Poco::JSON::Object::Ptr>();
    for (const auto& [key, child] : *object) {
      keys.insert(key);
      collect_keys(child, keys);
    }
  } else if (value.type() == typeid(Poco::JSON::Array::Ptr)) {
    for (const auto& child : *value.extract<Poco::JSON::Array::Ptr>()) collect_keys(child, keys);
  }
}

}  // namespace

TEST_CASE("an option of one command is refused by the others, naming who takes it", "[cli]") {
  CHECK(usage_error({"--keep", "5", "dir"}) ==
        "'--keep' is not an option of a run; only gc takes it (see ce-run --help)");
  CHECK(usage_error({"--results", "dir"}) == "'--results' is not an option of a run; only gc takes it (see ce-run --help)");
  CHECK(usage_error({"gc", "--report", "r.json", "dir"}) ==
        "'--report' is not an option of gc; only a run takes it (see ce-run --help)");
  CHECK(usage_error({"status", "-n", "dir"}) ==
        "'-n' is not an option of status; only a run and gc take it (see ce-run --help)");
  CHECK(usage_error({"shell", "--gfs", "/g", "dir"}) ==
        "'--gfs' is not an option of shell; only a run, gc, graph and log take it (see ce-run --help)");
  CHECK(usage_error({"lint", "--allow-dirty", "dir"}) ==
        "'--allow-dirty' is not an option of lint; only a run, graph, log and sym take it (see ce-run --help)");
  CHECK(usage_error({"why", "--incremental", "dir"}) ==
        "'--incremental' is not an option of why; only a run takes it (see ce-run --help)");
}

TEST_CASE("each command takes its own options", "[cli]") {
  auto gc = parse_command_line({"gc", "-n", "--keep", "5", "--results", "--gfs", "/g", "dir"});
  CHECK(gc.action == Command::Action::gc);
  CHECK(gc.dry_run);
  CHECK(gc.gc_keep == 5);
  CHECK(gc.gc_results);
  auto run = parse_command_line({"-n", "--gfs=/g", "--report", "r.json", "--allow-dirty", "--verify",
                                 "--incremental", "--keep-build-container", "-q", "dir", "in"});
  CHECK(run.action == Command::Action::run);
  CHECK(run.report == "r.json");
  CHECK(run.inputs == std::vector<std::string>{"in"});
  CHECK(parse_command_line({"-v", "status", "dir"}).action == Command::Action::status);
  CHECK(parse_command_line({"shell", "-q", "dir", "--", "ls"}).command == std::vector<std::string>{"ls"});
}

TEST_CASE("every option that --help lists is in docs/cli.md", "[cli][docs]") {
  std::string help = ce::runner::usage();
  std::string docs = docs_cli();
  std::regex option("(^|[ ,\\[])(--[a-z][a-z-]*|-[a-z])\\b");
  std::set<std::string> listed;
  for (std::sregex_iterator it(help.begin(), help.end(), option), end; it != end; ++it) listed.insert((*it)[2]);
  REQUIRE(listed.size() >= 12);
  for (const auto& name : listed) {
    INFO("docs/cli.md does not document " << name);
    CHECK(docs.find("`" + name) != std::string::npos);
  }
}

TEST_CASE("every field the report writes is in docs/cli.md's schema", "[cli][docs]") {
  ce::runner::CallResult result;
  result.outcome = ce::runner::Outcome::computed;
  result.facts.steps.push_back({1, "stage", 1, 2, 1, "docker-setup.sh:1-2", "k", "built", 1.0});
  result.facts.inputs.push_back({"in", "/g/tinputs/ab/cdef", "abcdef"});
  result.outputs.push_back({"out", "/g/c_x/y/00/z", ce::runner::OutputStatus::computed, std::string(64, 'a')});
  for (const char* p : ce::runner::phase::all) result.facts.phases.emplace_back(p, 0.5);
  std::set<std::string> keys;
  collect_keys(Poco::JSON::Parser().parse(ce::runner::report_json(result, 0)), keys);
  REQUIRE(keys.size() >= 30);
  std::string docs = docs_cli();
  auto begin = docs.find("## The report");
  REQUIRE(begin != std::string::npos);
  std::string schema = docs.substr(begin, docs.find("\n## ", begin + 1) - begin);
  for (const auto& key : keys) {
    INFO("the report's field \"" << key << "\" is not in docs/cli.md's schema");
    CHECK(schema.find("\"" + key + "\"") != std::string::npos);
  }
}

TEST_CASE("docs/architecture.md gives the fuzzing time that tests/CMakeLists.txt runs", "[docs]") {
  std::ifstream cmake(std::string(CE_SOURCE_DIR) + "/tests/CMakeLists.txt");
  std::ostringstream text;
  text << cmake.rdbuf();
  std::smatch seconds;
  std::string lists = text.str();
  REQUIRE(std::regex_search(lists, seconds, std::regex("scripts/fuzz ([0-9]+) ")));
  std::ifstream doc(std::string(CE_SOURCE_DIR) + "/docs/architecture.md");
  std::ostringstream arch;
  arch << doc.rdbuf();
  std::string architecture = arch.str();
  INFO("docs/architecture.md must say: run by ctest for " << seconds[1] << " s each");
  CHECK(std::regex_search(architecture, std::regex("for\\s" + seconds[1].str() + " s each")));
}
