#include <catch2/catch.hpp>

#include "stages/lint.h"

using namespace ce::stages;

namespace {
std::vector<std::string> lint_of(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& d : lint(parse_setup_test(text)))
    out.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message);
  return out;
}
}  // namespace

TEST_CASE("a clean script has no warnings", "[lint]") {
  CHECK(lint_of("set -e\nexport A=1\nf() { mkdir -p /x; }\n"
                "next_stage && apt-get update && apt-get install -y --no-install-recommends curl\n"
                "next_stage && git clone https://example.org/r.git /r && git -C /r checkout 0123abcd\n"
                "everytime && make -C /r\n")
            .empty());
}

TEST_CASE("git clone without a pinned commit is reported", "[lint]") {
  auto w = lint_of("next_stage && git clone https://example.org/r.git /r\n");
  REQUIRE(w.size() == 1);
  CHECK(w[0] ==
        "1:15: `git clone' is not pinned to a commit: check out an explicit commit id after it (e.g. git -C DIR "
        "checkout 1a2b3c4d), so that a new upstream commit cannot change a cached stage and a change of the "
        "pinned id re-runs it");
  CHECK(lint_of("next_stage && git clone u /r\neverytime && (cd /r && git checkout $REV)\n").empty());
}

TEST_CASE("checking out a branch name is reported", "[lint]") {
  auto w = lint_of("everytime && (cd something && git fetch && git checkout master)\n");
  REQUIRE(w.size() == 1);
  CHECK(w[0] == "1:44: `git checkout master' follows a moving name: use an explicit commit id, so that the "
                "script's own commit says exactly which code runs");
  CHECK(lint_of("everytime && (cd something && git fetch && git checkout 12345ab)\n").empty());
}

TEST_CASE("apt-get install without -y is reported", "[lint]") {
  auto w = lint_of("next_stage && apt-get update && sudo apt-get install curl\n");
  REQUIRE(w.size() == 1);
  CHECK(w[0] == "1:33: `apt-get install' without -y waits for an answer no one gives in a build: add -y");
  CHECK(lint_of("next_stage && apt-get -qqy install curl\n").empty());
}

TEST_CASE("a stage that reads COMPDIR is explained", "[lint]") {
  auto w = lint_of("next_stage && cp $COMPDIR/requirements.txt /tmp\n");
  REQUIRE(w.size() == 1);
  CHECK(w[0] == "1:1: stage 1 is rebuilt, with every stage after it, on each commit that changes the "
                "computation's files: it reads $COMPDIR; read COMPDIR in an everytime step after the stages if "
                "you can");
}

TEST_CASE("a context line with side effects is reported", "[lint]") {
  auto w = lint_of("mkdir -p /opt/x\nnext_stage && a\nnext_stage && b\nV=$(date)\neverytime && c\n");
  REQUIRE(w.size() == 2);
  CHECK(w[0] == "1:1: this line is not a step, so it runs again before each of the 3 steps after it: prefix "
                "it with `next_stage &&' to run it once, or `everytime &&' to run it on every run");
  CHECK_THAT(w[1], Catch::StartsWith("4:1: this line is not a step, so it runs again before each of the 1 steps"));
}

TEST_CASE("steps after an unconditional exit are reported", "[lint]") {
  auto w = lint_of("next_stage && a\nexit 0\nnext_stage && b\n[ -e x ] || exit 1\n");
  REQUIRE(w.size() == 2);
  CHECK(w[0] == "2:1: this line is not a step, so it runs again before each of the 1 steps after it: prefix it "
                "with `next_stage &&' to run it once, or `everytime &&' to run it on every run");
  CHECK(w[1] == "3:1: this step never runs: line 2 exits the script before it; remove that exit");
}
