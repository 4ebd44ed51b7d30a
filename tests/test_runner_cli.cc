// ce-run end to end, as a user runs it: the built binary on computation
// directories in fresh Git repositories, against the real engine.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <sys/wait.h>
#include <thread>

#include "docker/client.h"
#include "stages/stage_engine.h"
#include "support/ce_run.h"
#include "support/engine_fixture.h"

using namespace ce::test;
using ce::docker::Client;
using ce::docker::Force;

namespace {

// A computation of its own name; everything ce-run made for it is removed at
// the end, as it carries the ce-run.computation label.
struct Computation {
  TempDir dir;
  std::string name = "cli-" + std::to_string(::getpid()) + "-" +
                     std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  Client client;

  explicit Computation(const std::string& setup, const std::string& exec = "#!/bin/sh\necho \"exec: $*\"\n") {
    std::map<std::string, std::string> files = {
        {"docker.conf", "image = \"busybox:latest\"\nname = \"" + name + "\"\n"}, {"exec", exec}};
    if (!setup.empty()) files["docker-setup.sh"] = setup;
    make_repo(dir.path(), files);
  }
  ~Computation() {
    try {
      for (const auto& c : client.list_containers({{"ce-run.computation", name}})) client.remove_container(c.id, Force::yes);
      for (const auto& i : client.list_images({{"ce-run.computation", name}})) {
        try {
          client.remove_image(i.id, Force::yes);
        } catch (const std::exception&) {
        }
      }
    } catch (const std::exception&) {
    }
  }
  std::string path() const { return dir.str(); }
  std::size_t images() { return client.list_images({{"ce-run.computation", name}}).size(); }
  std::size_t containers() { return client.list_containers({{"ce-run.computation", name}}).size(); }
  void commit(const std::string& file, const std::string& content) {
    std::ofstream((dir.path() / file).string()) << content;
    sh(dir.path(), "git add -A && git -c user.name=t -c user.email=t@e commit -q -m change");
  }
};

}  // namespace

TEST_CASE("ce-run applies stages, runs everytime steps and the command; the next run reuses the stages",
          "[docker][cli]") {
  Computation c("next_stage && echo built-once > /stamp\neverytime && echo every-run: $(cat /stamp)\n");
  auto first = run_ce({c.path(), "in1", "in2"});
  INFO(first.err);
  CHECK(first.exit_code == 0);
  CHECK(first.out == "exec: in1 in2\n");
  CHECK_THAT(first.err, Catch::Contains("stage 1 (" + c.path() + "/docker-setup.sh:1) building..."));
  CHECK_THAT(first.err, Catch::Contains("stage 1 (" + c.path() + "/docker-setup.sh:1) built in "));
  CHECK_THAT(first.err, Catch::Contains("every-run: built-once"));
  CHECK(c.images() == 1);
  CHECK(c.containers() == 0);

  auto second = run_ce({c.path(), "x"});
  CHECK(second.exit_code == 0);
  CHECK_THAT(second.err, Catch::Contains("stage 1 (" + c.path() + "/docker-setup.sh:1) cached"));
  CHECK_THAT(second.err, Catch::Contains("every-run: built-once"));
  CHECK_FALSE(Catch::Contains("building").match(second.err));
  CHECK(c.images() == 1);

  auto quiet = run_ce({"-q", c.path(), "x"});
  CHECK(quiet.out == "exec: x\n");
  CHECK(quiet.err.find("stage 1") == std::string::npos);
}

TEST_CASE("the exit code is the command's own", "[docker][cli]") {
  Computation c("");
  CHECK(run_ce({c.path(), "--", "sh", "-c", "exit 7"}).exit_code == 7);
  auto r = run_ce({c.path(), "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2"});
  CHECK(r.out == "to-stdout\n");
  CHECK_THAT(r.err, Catch::EndsWith("to-stderr\n"));
}

TEST_CASE("a broken docker-setup.sh is refused with file:line:col and exit 125", "[docker][cli]") {
  Computation c("next_stage && echo ok\nnext_stage && {\n  echo 'never closed\n}\n");
  auto r = run_ce({c.path()});
  CHECK(r.exit_code == 125);
  CHECK(r.err == "ce-run: error: " + c.path() +
                     "/docker-setup.sh:3:8: unterminated single quote: no matching `'' before the end of the file\n");
  Computation bare("next_stage\napt-get update\n");
  auto b = run_ce({bare.path()});
  CHECK(b.exit_code == 125);
  CHECK_THAT(b.err, Catch::Contains(bare.path() + "/docker-setup.sh:1:1: `next_stage' must be followed by `&&'"));
}

TEST_CASE("a dry run (-n) shows the plan and builds nothing", "[docker][cli]") {
  Computation c("next_stage && echo one\neverytime && echo two\n");
  auto r = run_ce({"-n", c.path()});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("would build"));
  CHECK_THAT(r.out, Catch::Contains("would run"));
  CHECK_THAT(r.out, Catch::Contains("then run: " + c.path() + "/exec"));
  CHECK(c.images() == 0);
  CHECK(c.containers() == 0);
  run_ce({c.path()});
  CHECK_THAT(run_ce({"-n", c.path()}).out, Catch::Contains("cached"));
}

TEST_CASE("uncommitted changes are refused, listing the files, unless --allow-dirty", "[docker][cli]") {
  Computation c("");
  std::ofstream((c.dir.path() / "notes.txt").string()) << "new\n";
  std::ofstream((c.dir.path() / "exec").string(), std::ios::app) << "# edited\n";
  std::ofstream((c.dir.path() / "docker-container").string()) << "never counts\n";
  auto r = run_ce({c.path()});
  CHECK(r.exit_code == 125);
  CHECK(r.err == "ce-run: error: " + c.path() + " has uncommitted changes:\n  exec\n  notes.txt\n"
                 "commit them, or run with --allow-dirty (results are then marked dirty)\n");
  CHECK(run_ce({"--allow-dirty", c.path()}).exit_code == 0);
}

TEST_CASE("lint lists the setup script's warnings with their places", "[docker][cli]") {
  Computation c("next_stage && apt-get install curl\n");
  auto r = run_ce({"lint", c.path()});
  CHECK(r.exit_code == 1);
  CHECK(r.out == c.path() + "/docker-setup.sh:1:15: warning: `apt-get install' without -y waits for an answer "
                            "no one gives in a build: add -y\n");
  Computation clean("next_stage && true\n");
  auto ok = run_ce({"lint", clean.path()});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == clean.path() + "/docker-setup.sh: no warnings\n");
}

TEST_CASE("kill -9 during a stage leaves no finished-looking image, and the next run cleans up and builds it",
          "[docker][cli]") {
  Computation c("next_stage && sleep 2 && echo done > /stage1\n");
  int pid = spawn_ce({c.path()});
  // Wait until its build container runs the stage.
  ce::docker::Labels build = {{"ce-run.computation", c.name}, {ce::stages::label::role, "build"}};
  bool building = false;
  for (int i = 0; i < 200 && !building; ++i) {
    building = !c.client.list_containers(build, ce::docker::Which::running).empty();
    if (!building) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(building);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(c.images() == 0);  // nothing that looks like a finished stage
  CHECK(c.client.list_containers(build).size() == 1);  // its build container, orphaned

  auto r = run_ce({c.path(), "--", "cat", "/stage1"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "done\n");
  CHECK(c.client.list_containers(build).empty());
  CHECK(c.images() == 1);
}
