// The call pipeline as a library (runner/call.h): its steps without an
// engine, the outcome-to-exit-code table, and many calls at once in one
// process against the real engine.
#include <catch2/catch.hpp>

#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <boost/filesystem.hpp>
#include <fstream>
#include <mutex>
#include <thread>

#include "runner/call.h"
#include "runner/cli/run_command.h"
#include "runner/gfs.h"
#include "support/ce_run.h"
#include "support/computation.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using ce::test::TempDir;

namespace {

// Records what a call reports, from any thread.
struct RecordingEvents : CallEvents {
  std::mutex mutex;
  std::vector<std::string> notes;
  std::vector<std::string> phases;
  int built = 0;
  void step_finished(const ce::stages::Step&, ce::stages::StepStatus status, double) override {
    std::lock_guard<std::mutex> lock(mutex);
    built += status == ce::stages::StepStatus::built;
  }
  void note(Level, const std::string& text) override {
    std::lock_guard<std::mutex> lock(mutex);
    notes.push_back(text);
  }
  void phase_ended(const char* phase, double) override {
    std::lock_guard<std::mutex> lock(mutex);
    phases.push_back(phase);
  }
};

// A computation in a fresh repository, with no engine involved.
struct Repo {
  TempDir dir;
  explicit Repo(const std::string& exec = "#!/bin/sh\ncat \"$1\" > \"$2\"\n", bool compeval = true) {
    std::map<std::string, std::string> files = {{"docker.conf", "image = \"busybox:latest\"\nname = \"unit\"\n"},
                                                {"exec", exec}};
    if (compeval) {
      files["inputs"] = "text\n";
      files["outputs"] = "copy\n";
    }
    ce::test::make_repo(dir.path(), files);
  }
};

CallRequest request_for(const std::string& compdir, const std::string& gfs, std::vector<std::string> inputs) {
  CallRequest r;
  r.compdir = compdir;
  r.inputs = std::move(inputs);
  r.host.gfs = boost::filesystem::canonical(gfs).string();
  r.invoker = invoking_user();
  r.host.supervisor = (boost::filesystem::path(CE_RUN_BINARY).parent_path() / "ce-run-supervise").string();
  return r;
}

// An engine address no engine listens on: a step that touched the engine
// would fail.
struct NoEngine {
  NoEngine() {
    if (const char* old = std::getenv("DOCKER_HOST")) saved = old;
    ::setenv("DOCKER_HOST", "unix:///nonexistent/ce-run-test.sock", 1);
  }
  ~NoEngine() {
    if (saved.empty())
      ::unsetenv("DOCKER_HOST");
    else
      ::setenv("DOCKER_HOST", saved.c_str(), 1);
  }
  std::string saved;
};

}  // namespace

TEST_CASE("every outcome maps to its exit code", "[call]") {
  CallResult r;
  auto code = [&](Outcome o, int own = 0) {
    r.outcome = o;
    r.exit_code = own;
    return exit_code_for(r);
  };
  CHECK(code(Outcome::cached) == 0);
  CHECK(code(Outcome::computed) == 0);
  CHECK(code(Outcome::planned) == 3);  // -n: the call would run
  CHECK(code(Outcome::verified) == 0);
  CHECK(code(Outcome::command_failed, 3) == 3);
  CHECK(code(Outcome::command_failed, 77) == 77);
  CHECK(code(Outcome::timed_out, 137) == exit_code::timed_out);
  CHECK(code(Outcome::cancelled) == exit_code::interrupted);
  CHECK(code(Outcome::no_exec) == exit_code::not_found);
  CHECK(code(Outcome::not_executable) == exit_code::not_executable);
  CHECK(code(Outcome::corrupt) == 1);
  for (Outcome o : {Outcome::engine_lost, Outcome::gfs_full, Outcome::setup_failed, Outcome::failed})
    CHECK(code(o, 4) == exit_code::runner_error);
}

TEST_CASE("prepare and find-done touch no engine, the result says what happened", "[call]") {
  NoEngine no_engine;
  Repo repo;
  TempDir gfs, data;
  std::string input = (data.path() / "in.txt").string();
  std::ofstream(input) << "hello\n";
  ce::docker::Client client;  // at the address above: any use fails
  ce::docker::Cancellation cancel;
  RecordingEvents events;

  SECTION("a call that is not done goes on to the plan, with its facts") {
    CallPipeline p(request_for(repo.dir.str(), gfs.str(), {input}), events);
    REQUIRE(p.prepare());
    REQUIRE(p.find_done());
    const auto& facts = p.result().facts;
    CHECK(facts.name == "unit");
    CHECK(facts.commit.size() == 40);
    CHECK(facts.id.size() == 40);
    REQUIRE(facts.inputs.size() == 1);
    CHECK(facts.inputs[0].sha1 == sha1_file(input));
    CHECK(events.phases == std::vector<std::string>{phase::load, phase::identity, phase::inputs});
    // The plan needs the engine: its absence is a failure with a message.
    CHECK_FALSE(p.plan(client));
    CHECK(p.result().outcome == Outcome::failed);
    CHECK_FALSE(p.result().message.empty());
  }
  SECTION("the wrong number of inputs fails in prepare, naming the counts") {
    auto r = run_call(request_for(repo.dir.str(), gfs.str(), {input, input}), client, events, {}, cancel);
    CHECK(r.outcome == Outcome::failed);
    CHECK_THAT(r.message, Catch::StartsWith("expected 1 input (text), got 2"));
    CHECK(r.outputs.empty());
  }
  SECTION("a missing exec is no_exec, a dry run still plans (and then needs the engine)") {
    ce::test::sh(repo.dir.path(), "git rm -q exec && git -c user.name=t -c user.email=t@e commit -q -m 'no exec'");
    auto r = run_call(request_for(repo.dir.str(), gfs.str(), {input}), client, events, {}, cancel);
    CHECK(r.outcome == Outcome::no_exec);
    CHECK_THAT(r.message, Catch::EndsWith("exec: no exec file; add one, or give a command after --"));
    CHECK(exit_code_for(r) == 127);
  }
  SECTION("uncommitted changes are refused unless the request allows them") {
    std::ofstream((repo.dir.path() / "notes").string()) << "new\n";
    auto refused = run_call(request_for(repo.dir.str(), gfs.str(), {input}), client, events, {}, cancel);
    CHECK(refused.outcome == Outcome::failed);
    CHECK_THAT(refused.message, Catch::Contains("uncommitted changes") && Catch::Contains("notes"));
    auto request = request_for(repo.dir.str(), gfs.str(), {input});
    request.dirty = DirtyPolicy::allow;
    CallPipeline p(request, events);
    REQUIRE(p.prepare());
    CHECK(p.result().facts.dirty);
  }
  SECTION("verify of a call never computed says there is nothing to compare") {
    auto request = request_for(repo.dir.str(), gfs.str(), {input});
    request.mode = CallMode::verify;
    auto r = run_call(request, client, events, {}, cancel);
    CHECK(r.outcome == Outcome::corrupt);
    CHECK(r.problems == std::vector<std::string>{"no record: the call is not done"});
    CHECK(exit_code_for(r) == 1);
  }
}

TEST_CASE("the report is one serialiser of the result", "[call]") {
  CallResult r;
  r.outcome = Outcome::command_failed;
  r.exit_code = 3;
  r.message = "exec exited with 3";
  r.facts.name = "n";
  r.outputs.push_back({"out", "/g/x", OutputStatus::verified, {}});
  auto json = Poco::JSON::Parser().parse(report_json(r, 3)).extract<Poco::JSON::Object::Ptr>();
  CHECK(json->getValue<std::string>("outcome") == "command_failed");
  CHECK(json->getValue<int>("exit_code") == 3);
  CHECK(json->getValue<std::string>("error") == "exec exited with 3");
  CHECK(json->getArray("outputs")->getObject(0)->getValue<std::string>("status") == "cached");  // verified: cached
  CHECK(json->getObject("container")->isNull("id"));
}

namespace {

// Two inputs, two outputs; a run is counted in the container's /tmp/runs;
// an input holding "slow" makes it wait (a marker says it started) until
// it is stopped.
const char* const waiting_exec =
    "#!/bin/sh\n"
    "echo \"$(cat \"$1\") $(cat \"$2\")\" >> /tmp/runs\n"
    "if grep -q slow \"$1\"; then touch /tmp/started; sleep 300; fi\n"
    "sleep 1\n"
    "cat \"$1\" \"$2\" > \"$3\"\n"
    "cat \"$2\" \"$1\" > \"$4\"\n";

std::map<std::string, std::string> pair_files() { return {{"inputs", "first\nsecond\n"}, {"outputs", "ab\nba\n"}}; }

}  // namespace

TEST_CASE("eight calls at once in one process: each distinct call computes once, a cancelled one files nothing",
          "[docker][call]") {
  ce::test::Computation a("next_stage && echo one > /one\neverytime && echo ready > /tmp/ready\n", waiting_exec,
                          pair_files());
  ce::test::Computation b("", waiting_exec, pair_files());
  TempDir gfs, data;
  auto input = [&](const std::string& name, const std::string& text) {
    std::string path = (data.path() / name).string();
    std::ofstream(path) << text << "\n";
    return path;
  };
  std::string x = input("x", "x"), y = input("y", "y"), slow = input("slow", "slow");

  struct Job {
    std::string compdir;
    std::vector<std::string> inputs;
    CallResult result;
    ce::docker::Cancellation cancel;
  };
  std::vector<std::unique_ptr<Job>> jobs;
  auto add = [&](const ce::test::Computation& c, std::vector<std::string> inputs) {
    jobs.push_back(std::make_unique<Job>());
    jobs.back()->compdir = c.path();
    jobs.back()->inputs = std::move(inputs);
  };
  add(a, {x, y});  // 0, 1, 2: identical
  add(a, {x, y});
  add(a, {x, y});
  add(a, {y, x});  // 3: distinct
  add(a, {x, x});  // 4: distinct
  add(b, {x, y});  // 5, 6: identical, another computation
  add(b, {x, y});
  add(b, {slow, y});  // 7: cancelled once its command runs
  Job& cancelled = *jobs[7];

  ce::docker::Client client;  // one client for every thread
  RecordingEvents events;
  std::vector<std::thread> threads;
  std::atomic<bool> slow_ended{false};
  for (auto& job : jobs) {
    threads.emplace_back([&, j = job.get()] {
      j->result = run_call(request_for(j->compdir, gfs.str(), j->inputs), client, events,
                           [](ce::docker::StreamKind, std::string_view) {}, j->cancel);
      if (j == &cancelled) slow_ended = true;
    });
  }
  bool started = ce::test::poll_until(
      [&] { return slow_ended || b.exists_in_containers("/tmp/started"); }, 120, std::chrono::milliseconds(200));
  bool ended_early = slow_ended;
  cancelled.cancel.cancel();
  for (auto& t : threads) t.join();
  std::string outcomes;
  for (const auto& job : jobs) outcomes += std::string(to_string(job->result.outcome)) + ": " + job->result.message + "\n";
  INFO(outcomes);
  REQUIRE(started);
  REQUIRE_FALSE(ended_early);

  for (std::size_t k = 0; k < 7; ++k) {
    INFO("call " << k << ": " << to_string(jobs[k]->result.outcome) << ": " << jobs[k]->result.message);
    auto outcome = jobs[k]->result.outcome;
    CHECK((outcome == Outcome::computed || outcome == Outcome::cached));
    REQUIRE(jobs[k]->result.outputs.size() == 2);
    CHECK(ce::test::slurp(jobs[k]->result.outputs[0].path) ==
          ce::test::slurp(jobs[k]->inputs[0]) + ce::test::slurp(jobs[k]->inputs[1]));
    CHECK(ce::test::slurp(jobs[k]->result.outputs[1].path) ==
          ce::test::slurp(jobs[k]->inputs[1]) + ce::test::slurp(jobs[k]->inputs[0]));
  }
  auto computed = [&](std::size_t first, std::size_t last) {
    int n = 0;
    for (std::size_t k = first; k <= last; ++k) n += jobs[k]->result.outcome == Outcome::computed;
    return n;
  };
  CHECK(computed(0, 2) == 1);  // identical calls: one computes, the others find its result
  CHECK(computed(3, 3) == 1);
  CHECK(computed(4, 4) == 1);
  CHECK(computed(5, 6) == 1);
  // Each distinct call ran its command once: three in a, two in b (one cancelled).
  auto runs_a = a.lines_in_containers("/tmp/runs");
  auto runs_b = b.lines_in_containers("/tmp/runs");
  std::sort(runs_a.begin(), runs_a.end());
  std::sort(runs_b.begin(), runs_b.end());
  CHECK(runs_a == std::vector<std::string>{"x x", "x y", "y x"});
  CHECK(runs_b == std::vector<std::string>{"slow y", "x y"});
  CHECK(a.count_lines_in_containers("/tmp/ready") == 1);  // one container per commit, set up once
  CHECK(events.built == 1);  // five calls of a, its stage built once
  CHECK(a.images() == 1);

  // The cancelled call: cancelled, nothing filed, nothing left running.
  INFO(cancelled.result.message);
  CHECK(cancelled.result.outcome == Outcome::cancelled);
  REQUIRE(cancelled.result.outputs.size() == 2);
  for (const auto& o : cancelled.result.outputs) {
    CHECK(o.status == OutputStatus::missing);
    CHECK_FALSE(boost::filesystem::exists(o.path));
  }
  auto containers = b.run_containers();
  REQUIRE(containers.size() == 1);
  ce::docker::ExecSpec ps;
  ps.cmd = {"ps", "-o", "args"};
  std::string processes;
  client.run_exec(containers[0], ps, [&](ce::docker::StreamKind, std::string_view s) { processes.append(s); });
  CHECK_FALSE(Catch::Contains("sleep 300").match(processes));
}

namespace {
struct StageWatch : CallEvents {
  std::atomic<bool> building{false};
  void step_started(const ce::stages::Step&, ce::stages::StepStatus status) override {
    if (status == ce::stages::StepStatus::built) building = true;
  }
};
}  // namespace

TEST_CASE("a call cancelled while a stage builds stops it and leaves no image and no build container",
          "[docker][call]") {
  ce::test::Computation c("next_stage && echo building && sleep 300\n");
  TempDir gfs;
  ce::docker::Client client;
  ce::docker::Cancellation cancel;
  StageWatch events;
  CallResult result;
  auto request = request_for(c.path(), gfs.str(), {});
  request.command = {"true"};
  auto started = std::chrono::steady_clock::now();
  std::thread call([&] { result = run_call(request, client, events, {}, cancel); });
  bool building = ce::test::poll_until([&] { return events.building.load(); }, 60);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the step runs
  cancel.cancel();
  call.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  REQUIRE(building);
  INFO(result.message);
  CHECK(result.outcome == Outcome::cancelled);
  CHECK(seconds < 100);  // not the stage's 300 s
  CHECK(c.images() == 0);
  CHECK(ce::test::poll_until([&] { return c.containers() == 0; }, 20));
}
