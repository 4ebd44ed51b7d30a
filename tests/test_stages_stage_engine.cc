// The stage engine against the real engine: what is built, what is reused,
// and what is left behind.
#include <catch2/catch.hpp>

#include <mutex>
#include <set>
#include <thread>

#include "stages/build_network.h"
#include "stages/stage_engine.h"
#include "support/engine_fixture.h"

using namespace ce::stages;
using namespace ce::docker;
using ce::test::EngineFixture;
using ce::test::TempDir;

namespace {

// Records what an apply did.
struct Recorder : StepObserver {
  std::mutex mutex;
  std::vector<std::string> started;  // "stage 2", "everytime 3"
  std::vector<std::string> finished;
  std::vector<std::string> warnings;
  std::string output;
  static std::string name(const Step& s) {
    return s.kind == StepKind::stage ? "stage " + std::to_string(s.stage_number) : "everytime " + std::to_string(s.index);
  }
  void step_started(const Step& s, StepStatus) override {
    std::lock_guard lock(mutex);
    started.push_back(name(s));
  }
  void step_output(const Step&, StreamKind, std::string_view bytes) override {
    std::lock_guard lock(mutex);
    output.append(bytes);
  }
  void step_finished(const Step& s, StepStatus status, double) override {
    std::lock_guard lock(mutex);
    finished.push_back(name(s) + " " + to_string(status));
  }
  void warning(const std::string& w) override {
    std::lock_guard lock(mutex);
    warnings.push_back(w);
  }
};

struct StageTest {
  EngineFixture f;
  TempDir locks;
  // The build network holders of this test's lock directory go with it.
  ~StageTest() {
    try {
      remove_idle_build_networks(f.client, locks.str(), Removal::remove);
    } catch (const std::exception&) {
    }
  }
  std::string base = "busybox:latest";
  // A marker that makes this test's keys its own.
  std::string marker = "MARK=" + f.labels().begin()->second + "\n";

  ApplyOptions options() {
    ApplyOptions o;
    o.computation = "stage-test";
    o.lock_dir = locks.str();
    o.labels = f.labels();
    return o;
  }
  StagePlan plan(const SetupScript& script) {
    return plan_stages(f.client, script, base, {f.client.inspect_image(base).id, "tree"});
  }
  ApplyResult apply(const std::string& text, Recorder& recorder, ApplyOptions o) {
    auto script = parse_setup_test(marker + text);
    auto p = plan(script);
    return apply_stages(f.client, script, p, o, recorder);
  }
  ApplyResult apply(const std::string& text, Recorder& recorder) { return apply(text, recorder, options()); }
  // The content of a file in an image.
  std::string read(const std::string& image, const std::string& path) {
    ContainerSpec spec;
    spec.image = image;
    spec.entrypoint = {"sleep"};
    spec.cmd = {"600"};
    auto id = f.create(spec);
    f.client.start_container(id);
    std::string out;
    f.exec(id, {"cat", path}, &out);
    f.client.remove_container(id, Force::yes);
    return out;
  }
  std::vector<ContainerSummary> build_containers() {
    auto labels = f.labels();
    labels[label::role] = "build";
    return f.client.list_containers(labels);
  }
};

const std::string two_stages =
    "next_stage && echo one >> /log\n"
    "next_stage && echo two >> /log\n";

}  // namespace

TEST_CASE("stages are built once, in order, and appending one runs only that one", "[docker][stages]") {
  StageTest t;
  Recorder first;
  auto r1 = t.apply(two_stages, first);
  CHECK(first.started == std::vector<std::string>{"stage 1", "stage 2"});
  CHECK(t.read(r1.image_id, "/log") == "one\ntwo\n");
  REQUIRE_FALSE(first.warnings.empty());
  CHECK_THAT(first.warnings[0], Catch::StartsWith("busybox:latest has no bash: docker-setup.sh steps run with its "
                                                  "/bin/sh instead"));

  Recorder again;
  auto r2 = t.apply(two_stages, again);
  CHECK(again.started.empty());
  CHECK(again.finished == std::vector<std::string>{"stage 1 cached", "stage 2 cached"});
  CHECK(r2.image_id == r1.image_id);

  Recorder appended;
  auto r3 = t.apply(two_stages + "next_stage && echo three >> /log\n", appended);
  CHECK(appended.started == std::vector<std::string>{"stage 3"});
  CHECK(t.read(r3.image_id, "/log") == "one\ntwo\nthree\n");
  r3.removal.wait();  // the build container goes in the background
  CHECK(t.build_containers().empty());
  // Found by its key's tag; and, where no stage has its tag (an earlier
  // ce-run's images), by its label, which tags it again.
  auto key = t.f.client.inspect_image(r3.image_id).labels.at(label::key);
  std::string tag = std::string(key_repository) + ":" + key;
  CHECK(t.f.client.inspect_image(tag).id == r3.image_id);
  for (const auto& stage : t.f.client.list_images(t.f.labels()))
    t.f.client.remove_image(std::string(key_repository) + ":" + stage.labels.at(label::key));  // untags only
  CHECK_FALSE(t.f.client.find_image(tag));
  Recorder untagged;
  t.apply(two_stages + "next_stage && echo three >> /log\n", untagged);
  CHECK(untagged.started.empty());
  CHECK(t.f.client.inspect_image(tag).id == r3.image_id);

  auto image = t.f.client.inspect_image(r3.image_id);
  CHECK(image.labels.at(label::number) == "3");
  CHECK(image.labels.at(label::key) == r3.final_key);
  CHECK(image.labels.at(label::lines) == "4");  // after the marker line
  CHECK(image.labels.at(label::parent) == t.f.client.inspect_image(r2.image_id).labels.at(label::key));
  CHECK(image.labels.at(label::computation) == "stage-test");
  CHECK(std::find(image.repo_tags.begin(), image.repo_tags.end(), "ce/stage-test:stage-3") != image.repo_tags.end());
  CHECK(image.cmd == std::vector<std::string>{"sh"});  // the base image's, not the build container's
}

TEST_CASE("editing stage 2 of 4 rebuilds 2 to 4, a whitespace edit rebuilds nothing", "[docker][stages]") {
  StageTest t;
  const std::string four = two_stages + "next_stage && echo three >> /log\nnext_stage && echo four >> /log\n";
  Recorder first;
  t.apply(four, first);
  CHECK(first.started.size() == 4);

  std::string edited = four;
  edited.replace(edited.find("echo two"), 8, "echo TWO");
  Recorder second;
  auto r = t.apply(edited, second);
  CHECK(second.started == std::vector<std::string>{"stage 2", "stage 3", "stage 4"});
  CHECK(t.read(r.image_id, "/log") == "one\nTWO\nthree\nfour\n");

  Recorder third;
  std::string reformatted = edited;
  reformatted.replace(reformatted.find("echo three >> /log"), 18, "echo   three   >>   /log   # same");
  t.apply("# a comment\n" + reformatted, third);
  CHECK(third.started.empty());
}

TEST_CASE("everytime steps between stages run in the build, in order, with the context before them",
          "[docker][stages]") {
  StageTest t;
  Recorder r;
  auto result = t.apply(
      "N=first\n"
      "next_stage && echo $N >> /log\n"
      "everytime && echo every-$N >> /log\n"
      "N=second\n"
      "next_stage && echo $N >> /log\n"
      "everytime && echo after-last-stage >> /log\n",
      r);
  CHECK(t.read(result.image_id, "/log") == "first\nevery-first\nsecond\n");
  REQUIRE(result.steps.size() == 4);
  CHECK(result.steps[1].status == StepStatus::ran);
  CHECK(result.steps[3].status == StepStatus::planned);  // the runner runs it, not the build
}

TEST_CASE("a failing stage leaves the stages before it cached and no container behind", "[docker][stages]") {
  StageTest t;
  const std::string script = two_stages + "next_stage && { echo about to fail; exit 3; }\n";
  Recorder r;
  try {
    t.apply(script, r);
    FAIL("the apply succeeded");
  } catch (const StepFailed& e) {
    CHECK(e.exit_code() == 3);
    CHECK(std::string(e.what()) ==
          "stage 3 (docker-setup.sh:4) failed with exit code 3; its last lines:\n  | about to fail\n"
          "the stages before it stay cached; fix it and run again");
    CHECK(e.kept_container().empty());
  }
  CHECK(t.build_containers().empty());
  auto p = t.plan(parse_setup_test(t.marker + script));
  CHECK(p.steps[0].cached);
  CHECK(p.steps[1].cached);
  CHECK_FALSE(p.steps[2].cached);

  auto keep = t.options();
  keep.keep = KeepBuildContainer::on_failure;
  Recorder r2;
  try {
    t.apply(script, r2, keep);
    FAIL("the apply succeeded");
  } catch (const StepFailed& e) {
    CHECK(r2.started == std::vector<std::string>{"stage 3"});
    REQUIRE_FALSE(e.kept_container().empty());
    CHECK_THAT(e.what(), Catch::EndsWith("the build container " + e.kept_container().substr(0, 12) +
                                         " is kept for inspection"));
    CHECK(t.build_containers().size() == 1);
  }
}

TEST_CASE("concurrent applies of the same stages build each stage once", "[docker][stages]") {
  StageTest t;
  const std::string script = "next_stage && sleep 1 && echo one >> /log\nnext_stage && echo two >> /log\n";
  Recorder a, b;
  ApplyResult ra, rb;
  std::exception_ptr failure;
  std::thread other([&] {
    try {
      Client client;  // a client of its own, as another process would have
      auto parsed = parse_setup_test(t.marker + script);
      auto p = plan_stages(client, parsed, t.base, {client.inspect_image(t.base).id, "tree"});
      rb = apply_stages(client, parsed, p, t.options(), b);
    } catch (...) {
      failure = std::current_exception();
    }
  });
  try {
    ra = t.apply(script, a);
  } catch (...) {
    other.join();
    throw;
  }
  other.join();
  if (failure) std::rethrow_exception(failure);
  CHECK(a.started.size() + b.started.size() == 2);
  CHECK(ra.image_id == rb.image_id);
  CHECK(t.read(ra.image_id, "/log") == "one\ntwo\n");
}

TEST_CASE("a build container whose process died is removed by the next apply", "[docker][stages]") {
  StageTest t;
  ContainerSpec spec;
  spec.image = "busybox:latest";
  spec.cmd = {"sleep", "600"};
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  spec.labels = {{label::role, "build"}, {label::owner, std::string(host) + ":999999999:1"}};
  auto dead = t.f.create(spec);
  spec.labels[label::owner] = "another-host:1:1";
  auto elsewhere = t.f.create(spec);
  reap_build_containers(t.f.client);
  CHECK_FALSE(t.f.client.find_container(dead).has_value());
  CHECK(t.f.client.find_container(elsewhere).has_value());
}

TEST_CASE("on debian:bookworm a stage installs a package with apt-get, and bash reports file line numbers",
          "[docker][stages]") {
  StageTest t;
  t.base = "debian:bookworm";
  Recorder r;
  auto result = t.apply(
      "set -e\n"
      "next_stage && apt-get update -qq && apt-get install -y -qq hello >/dev/null\n"
      "next_stage && [[ -x /usr/bin/hello ]] && hello > /greeting\n",
      r);
  CHECK(r.warnings.empty());  // bash is there
  CHECK(t.read(result.image_id, "/greeting") == "Hello, world!\n");

  Recorder failing;
  try {
    t.apply("set -e\nnext_stage && true\n\nnext_stage && no-such-command\n", failing);
    FAIL("the apply succeeded");
  } catch (const StepFailed& e) {
    CHECK(e.exit_code() == 127);
    CHECK_THAT(failing.output, Catch::Contains("docker-setup.sh: line 5: no-such-command: command not found"));
  }
}

TEST_CASE("build containers run in a holder's network namespace, one build per holder at a time",
          "[docker][stages]") {
  StageTest t;
  auto mac_of = [&](const std::string& container) {
    std::string out;
    t.f.exec(container, {"cat", "/sys/class/net/eth0/address"}, &out);
    return out;
  };
  const std::string stage = "next_stage && cat /sys/class/net/eth0/address > /mac";
  Recorder r;
  auto one = t.apply(stage + " && echo one\n", r);
  auto holder = t.f.client.find_container(ce::stages::BuildNetwork::holder_name(t.locks.str(), 0));
  REQUIRE(holder);
  CHECK(holder->state.running);
  CHECK(holder->labels.at("ce-run.role") == "network");
  CHECK(t.read(one.image_id, "/mac") == mac_of(holder->id));  // the holder's namespace
  one.removal.wait();

  // Two builds at once: each in a holder of its own.
  Recorder a, b;
  ApplyResult ra, rb;
  std::thread other([&] { rb = t.apply(stage + " && sleep 1 && echo b\n", b); });
  ra = t.apply(stage + " && sleep 1 && echo a\n", a);
  other.join();
  auto mac_a = t.read(ra.image_id, "/mac"), mac_b = t.read(rb.image_id, "/mac");
  CHECK(mac_a != mac_b);
  std::set<std::string> holders;
  for (int k = 0; k < 2; ++k) holders.insert(mac_of(ce::stages::BuildNetwork::holder_name(t.locks.str(), k)));
  CHECK(holders == std::set<std::string>{mac_a, mac_b});
  ra.removal.wait();
  rb.removal.wait();

  // Idle holders go with gc; the next build makes one again.
  using ce::stages::Removal;
  CHECK(ce::stages::remove_idle_build_networks(t.f.client, t.locks.str(), Removal::dry_run) >= 2);
  CHECK(ce::stages::remove_idle_build_networks(t.f.client, t.locks.str(), Removal::remove) >= 2);
  CHECK_FALSE(t.f.client.find_container(ce::stages::BuildNetwork::holder_name(t.locks.str(), 0)));
  auto again = t.apply(stage + " && echo again\n", r);
  again.removal.wait();
  auto made = t.f.client.find_container(ce::stages::BuildNetwork::holder_name(t.locks.str(), 0));
  REQUIRE(made);
  // Stopped (as by an engine restart): started again by the next build.
  t.f.client.stop_container(made->id, 1);
  auto restarted = t.apply(stage + " && echo restarted\n", r);
  CHECK(t.f.client.inspect_container(made->id).state.running);
  CHECK(t.read(restarted.image_id, "/mac") == mac_of(made->id));
  restarted.removal.wait();
  CHECK(t.f.client.find_container(made->id));  // builds that leave its files alone keep it

  // A stage that edits /etc/hosts edits the holder's: the holder goes, so
  // the next build does not see the edit.
  auto edited = t.apply("next_stage && echo '10.9.9.9 edited' >> /etc/hosts\n", r);
  edited.removal.wait();
  CHECK_FALSE(t.f.client.find_container(made->id));
  auto after = t.apply("next_stage && cat /etc/hosts > /hosts-seen\n", r);
  CHECK_FALSE(Catch::Contains("edited").match(t.read(after.image_id, "/hosts-seen")));
}
