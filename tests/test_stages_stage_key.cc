#include <catch2/catch.hpp>

#include "stages/stage_key.h"

using namespace ce::stages;

namespace {
const KeyInputs inputs{"sha256:1111111111111111111111111111111111111111111111111111111111111111", "tree-a"};

std::vector<std::string> keys_of(std::string_view text, KeyInputs in = inputs) {
  return stage_keys(parse_setup_test(text), in);
}

const char* const four_stages =
    "set -e\n"
    "next_stage && echo one\n"
    "next_stage && echo two\n"
    "everytime && echo always\n"
    "next_stage && {\n  echo three\n}\n"
    "next_stage && echo four\n";
}  // namespace

TEST_CASE("keys are SHA-256 in hex, one per stage", "[stage_key]") {
  auto keys = keys_of(four_stages);
  REQUIRE(keys.size() == 4);
  for (const auto& k : keys) CHECK(k.size() == 64);
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("a comment-only or whitespace-only edit changes no key", "[stage_key]") {
  auto keys = keys_of(four_stages);
  CHECK(keys_of("# setup\nset -e   # strict\n\nnext_stage && echo one\n"
                "next_stage &&   echo two   # second\n"
                "everytime && echo always;\n"
                "next_stage && { echo three; }\n"
                "\n\nnext_stage && echo four\n") == keys);
}

TEST_CASE("editing stage 2 of 4 changes keys 2 to 4 only", "[stage_key]") {
  auto keys = keys_of(four_stages);
  std::string edited = four_stages;
  edited.replace(edited.find("echo two"), 8, "echo TWO");
  auto changed = keys_of(edited);
  CHECK(changed[0] == keys[0]);
  CHECK(changed[1] != keys[1]);
  CHECK(changed[2] != keys[2]);
  CHECK(changed[3] != keys[3]);
}

TEST_CASE("appending a stage keeps every key before it", "[stage_key]") {
  auto keys = keys_of(four_stages);
  auto appended = keys_of(std::string(four_stages) + "next_stage && echo five\n");
  REQUIRE(appended.size() == 5);
  CHECK(std::vector<std::string>(appended.begin(), appended.begin() + 4) == keys);
}

TEST_CASE("context and everytime steps before a stage are part of its key", "[stage_key]") {
  auto keys = keys_of(four_stages);
  std::string edited = four_stages;
  edited.replace(edited.find("echo always"), 11, "echo sometimes");
  auto changed = keys_of(edited);
  CHECK(changed[0] == keys[0]);
  CHECK(changed[1] == keys[1]);
  CHECK(changed[2] != keys[2]);  // the everytime step comes before stage 3
  auto with_context = keys_of(std::string(four_stages).replace(0, 6, "set -eu"));
  CHECK(with_context[0] != keys[0]);
}

TEST_CASE("the base image's content ID is the root of the chain", "[stage_key]") {
  auto keys = keys_of(four_stages);
  KeyInputs other = inputs;
  other.base_image_id = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
  auto rebased = keys_of(four_stages, other);
  for (std::size_t i = 0; i < keys.size(); ++i) CHECK(rebased[i] != keys[i]);
}

TEST_CASE("a stage that reads COMPDIR gets the tree in its key, and so do the stages after it", "[stage_key]") {
  const char* script = "next_stage && echo a\nnext_stage && cp -r $COMPDIR/src /src\nnext_stage && make -C /src\n";
  auto a = keys_of(script);
  KeyInputs other = inputs;
  other.compdir_tree = "tree-b";
  auto b = keys_of(script, other);
  CHECK(a[0] == b[0]);
  CHECK(a[1] != b[1]);
  CHECK(a[2] != b[2]);
  // A script that never reads COMPDIR does not depend on the tree.
  CHECK(keys_of(four_stages) == keys_of(four_stages, other));
}
