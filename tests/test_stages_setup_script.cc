#include <catch2/catch.hpp>

#include "stages/setup_script.h"

using namespace ce::stages;

namespace {
std::string error_of(std::string_view text) {
  try {
    parse_setup_test(text);
  } catch (const ScriptError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("the seed's example splits into stages, everytime steps and context", "[setup_script]") {
  auto script = parse_setup_test(
      "#!/bin/bash\n"
      "set -e\n"
      "next_stage && cp /etc/a /etc/b\n"
      "next_stage && apt-get update && apt-get install package\n"
      "next_stage && {\n"
      "\tif ! [ -e /var/tmp/example ]; then\n"
      "\t\techo `hostname` is broken | mail root\n"
      "\tfi\n"
      "\trm -f /var/tmp/example\n"
      "}\n"
      "everytime && (cd something && git fetch && git checkout 12345)\n");
  REQUIRE(script.steps.size() == 4);
  CHECK(script.stage_count() == 3);
  CHECK(script.steps[0].kind == StepKind::stage);
  CHECK(script.steps[0].text == "cp /etc/a /etc/b");
  CHECK(script.steps[2].first_line == 5);
  CHECK(script.steps[2].last_line == 10);
  CHECK(script.lines_of(script.steps[2]) == "docker-setup.sh:5-10");
  CHECK(script.steps[3].kind == StepKind::everytime);
  CHECK(script.steps[3].stage_number == 3);
  CHECK(script.steps[3].index == 4);
  REQUIRE(script.context_units.size() == 1);
  CHECK(script.unit_text(script.context_units[0]) == "set -e");
}

TEST_CASE("a bare next_stage or everytime is an error with the fix", "[setup_script]") {
  CHECK(error_of("next_stage && a\nnext_stage\napt-get install x\n") ==
        "docker-setup.sh:2:1: `next_stage' must be followed by `&&' and its command on the same line, as in "
        "`next_stage && apt-get install -y curl'; a bare `next_stage' would let the lines after it run on "
        "every run");
  CHECK(error_of("  everytime || make\n") ==
        "docker-setup.sh:1:3: `everytime' must be followed by `&&' and its command on the same line, as in "
        "`everytime && apt-get install -y curl'");
}

TEST_CASE("next_stage inside another command is an error", "[setup_script]") {
  CHECK(error_of("if true; then\n  next_stage && make\nfi\n") ==
        "docker-setup.sh:2:3: `next_stage' may only begin a top-level line, as in `next_stage && <command>'; "
        "here it is part of another command");
  CHECK(error_of("true && everytime && make\n") ==
        "docker-setup.sh:1:9: `everytime' may only begin a top-level line, as in `next_stage && <command>'; "
        "here it is part of another command");
}

TEST_CASE("a step in the background is an error", "[setup_script]") {
  CHECK(error_of("next_stage && sleep 10 &\n") ==
        "docker-setup.sh:1:1: a step cannot run in the background: remove the `&' at its end");
}

TEST_CASE("syntax errors carry the file, line and column", "[setup_script]") {
  CHECK(error_of("next_stage && echo 'x\n") ==
        "docker-setup.sh:1:20: unterminated single quote: no matching `'' before the end of the file");
  CHECK(error_of("next_stage && {\n  make\n") ==
        "docker-setup.sh:1:15: `{' is not closed: expected `}' before the end of the file");
}

TEST_CASE("a step's program keeps line numbers and holds only its context and itself", "[setup_script]") {
  auto script = parse_setup_test(
      "A=1\n"
      "next_stage && echo $A; B=2\n"
      "f() { echo f; }\n"
      "everytime && f\n"
      "next_stage && cat <<EOF\n"
      "$B\n"
      "EOF\n");
  REQUIRE(script.steps.size() == 3);
  std::string helpers = "next_stage() { return 0; }; everytime() { return 0; }; ";
  CHECK(step_program(script, script.steps[0]) ==
        helpers + "A=1\nnext_stage && echo $A;    \n               \n              \n"
                  "                       \n  \n   \n");
  CHECK(step_program(script, script.steps[2]) ==
        helpers + "A=1\n                       B=2\nf() { echo f; }\n              \n"
                  "next_stage && cat <<EOF\n$B\nEOF\n");
}

TEST_CASE("steps and context that mention COMPDIR are marked", "[setup_script]") {
  auto script = parse_setup_test("D=$COMPDIR/x\nnext_stage && make -C /src\neverytime && ls \"${COMPDIR}\"\n");
  CHECK_FALSE(script.steps[0].reads_compdir);
  CHECK(script.context_reads_compdir(script.steps[0].unit));
  CHECK(script.steps[1].reads_compdir);
}

TEST_CASE("an empty or missing script has no steps", "[setup_script]") {
  CHECK(parse_setup_test("").steps.empty());
  CHECK(parse_setup_test("# only a comment\n\n").steps.empty());
  CHECK(load_setup_script("/nonexistent/docker-setup.sh", "docker-setup.sh").steps.empty());
}
