// Plans against a scripted engine: which stages count as cached.
#include <catch2/catch.hpp>

#include "stages/stage_engine.h"
#include "support/fake_engine.h"

using namespace ce::stages;
using ce::docker::Client;
using ce::docker::EngineAddress;
using ce::test::FakeEngine;

namespace {
const char* const script_text =
    "next_stage && echo one\n"
    "everytime && echo always\n"
    "next_stage && {\n  echo two\n}\n"
    "next_stage && echo three\n";
const KeyInputs inputs{"sha256:" + std::string(64, 'b'), "tree"};

std::string image_list(const std::vector<std::pair<std::string, std::string>>& key_to_id) {
  std::string body = "[";
  for (const auto& [key, id] : key_to_id) {
    if (body.size() > 1) body += ",";
    body += R"({"Id":")" + id + R"(","RepoTags":[],"Labels":{"ce-run.role":"stage","ce-run.stage.key":")" + key + R"("}})";
  }
  return body + "]";
}
std::string tagged(const std::string& key, const std::string& id) {
  return FakeEngine::ok(R"({"Id":")" + id + R"(","Config":{"Labels":{"ce-run.role":"stage","ce-run.stage.key":")" +
                        key + R"("}}})");
}
std::string no_such_image() {
  std::string body = R"({"message":"No such image: ce-run-stage:x"})";
  return "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string inspect_line(const std::string& key) { return "GET /v1.41/images/ce-run-stage:" + key + "/json HTTP/1.1"; }
}  // namespace

TEST_CASE("a plan lists every step with its number, kind, lines, key and cache state", "[plan]") {
  auto script = parse_setup_test(script_text);
  auto keys = stage_keys(script, inputs);
  // Looked up by tag from the last stage back: 3 and 2 have no image, 1 has.
  FakeEngine engine({{no_such_image()}, {no_such_image()}, {tagged(keys[0], "sha256:img1")}});
  Client client(EngineAddress::parse(engine.uri()));
  auto plan = plan_stages(client, script, "busybox:latest", inputs);
  CHECK(engine.request_lines() ==
        std::vector<std::string>{inspect_line(keys[2]), inspect_line(keys[1]), inspect_line(keys[0])});
  REQUIRE(plan.steps.size() == 4);
  CHECK(plan.steps[0].step->kind == StepKind::stage);
  CHECK(plan.steps[0].key == keys[0]);
  CHECK(plan.steps[0].cached);
  CHECK(plan.steps[0].image_id == "sha256:img1");
  CHECK(plan.steps[1].step->kind == StepKind::everytime);
  CHECK(plan.steps[1].key.empty());
  CHECK(plan.steps[2].step->first_line == 3);
  CHECK(plan.steps[2].step->last_line == 5);
  CHECK_FALSE(plan.steps[2].cached);
  CHECK_FALSE(plan.complete());
  CHECK(plan.final_key == keys[2]);
  CHECK(plan.final_image_id.empty());
}

TEST_CASE("stage images without their key's tag are found by label", "[plan]") {
  auto script = parse_setup_test(script_text);
  auto keys = stage_keys(script, inputs);
  FakeEngine engine({{no_such_image()}, {no_such_image()}, {no_such_image()},
                     {FakeEngine::ok(image_list({{keys[0], "sha256:img1"}, {keys[1], "sha256:img2"}}))},
                     {"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"}});
  Client client(EngineAddress::parse(engine.uri()));
  auto plan = plan_stages(client, script, "busybox:latest", inputs);
  CHECK(engine.request_lines().at(3).rfind("GET /v1.41/images/json?filters=", 0) == 0);
  // The last cached stage gets its tag, so the next plan finds it at once.
  CHECK(engine.request_lines().at(4) ==
        "POST /v1.41/images/sha256:img2/tag?repo=ce-run-stage&tag=" + keys[1] + " HTTP/1.1");
  CHECK(plan.steps[2].cached);
  CHECK(plan.steps[2].image_id == "sha256:img2");
  CHECK_FALSE(plan.steps[3].cached);
}

TEST_CASE("the last cached stage covers every stage before it", "[plan]") {
  auto script = parse_setup_test(script_text);
  auto keys = stage_keys(script, inputs);
  // Stage 2's image was deleted behind our back; stage 3's still holds it.
  FakeEngine engine({{tagged(keys[2], "sha256:img3")}});
  Client client(EngineAddress::parse(engine.uri()));
  auto plan = plan_stages(client, script, "busybox:latest", inputs);
  CHECK(plan.steps[0].cached);
  CHECK(plan.steps[2].cached);
  CHECK(plan.steps[3].cached);
  CHECK(plan.complete());
  CHECK(plan.final_image_id == "sha256:img3");
}

TEST_CASE("a script without stages plans to run on the base image and asks the engine nothing", "[plan]") {
  auto script = parse_setup_test("everytime && make\n");
  FakeEngine engine({});
  Client client(EngineAddress::parse(engine.uri()));
  auto plan = plan_stages(client, script, "busybox:latest", inputs);
  CHECK(plan.complete());
  CHECK(plan.final_image_id == inputs.base_image_id);
  CHECK(engine.connections() == 0);
}
