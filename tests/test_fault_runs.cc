// Faults around a run, caused on purpose against the real engine: ce-run
// killed mid-step, state changed behind its back, a full GFS, a missing base
// image, and many calls at once. Each asserts what the user sees and what is
// left on disk and in the engine.
#include <catch2/catch.hpp>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <map>
#include <sstream>
#include <chrono>
#include <csignal>
#include <fstream>
#include <set>
#include <sys/wait.h>
#include <thread>

#include "runner/container_mapping.h"
#include "runner/gfs.h"
#include "stages/stage_engine.h"
#include "support/computation.h"

using namespace ce::test;
namespace fs = boost::filesystem;

namespace {

// Waits until `path` exists in a running container of c's.
void wait_for_file(Computation& c, const std::string& path) {
  // (generous: it may wait for a stage build on a loaded machine)
  poll_until([&] { return c.exists_in_containers(path); }, 60);
  REQUIRE(c.exists_in_containers(path));
}

void kill_and_reap(int pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// Every file under dir, relative to it, sorted.
std::set<std::string> files_under(const fs::path& dir) {
  std::set<std::string> out;
  for (fs::recursive_directory_iterator it(dir), end; it != end; ++it)
    if (fs::is_regular_file(it->path())) out.insert(fs::relative(it->path(), dir).generic_string());
  return out;
}

}  // namespace

TEST_CASE("kill -9 during an everytime step: the step stops with ce-run, the next run finishes",
          "[docker][fault]") {
  TempDir gfs;
  Computation c("next_stage && echo one > /one\n"
                "everytime && echo started >> /tmp/every && { [ -e \"$GFSDIR/fast\" ] || sleep 61; }\n");
  int pid = spawn_ce({"--gfs", gfs.str(), c.path(), "--", "true"});
  wait_for_file(c, "/tmp/every");
  kill_and_reap(pid);
  auto ps = [&] { return run_ce({"--gfs", gfs.str(), c.path(), "--", "ps", "-o", "args"}); };
  std::ofstream((gfs.path() / "fast").string()) << "\n";
  auto r = ps();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(Catch::Contains("sleep 61").match(r.out));
  CHECK(c.containers() == 1);  // the commit's own, nothing else
  CHECK(c.images() == 1);      // stage 1, built once
  // The lock is free and nothing is left to wait for.
  auto again = ps();
  CHECK(again.exit_code == 0);
  CHECK_FALSE(Catch::Contains("interrupted").match(again.err));
}

TEST_CASE("a stage image deleted behind ce-run's back is built again", "[docker][fault]") {
  Computation c("next_stage && echo 1 > /s1\nnext_stage && echo 2 > /s2\nnext_stage && echo 3 > /s3\n");
  REQUIRE(run_ce({c.path(), "--", "true"}).exit_code == 0);
  auto stage = [&](int n) {
    return c.client.list_images({{"ce-run.computation", c.name}, {ce::stages::label::number, std::to_string(n)}});
  };
  REQUIRE(c.images() == 3);
  // The engine refuses to delete an image a running container uses, so a
  // user deleting one has stopped (or removed) the commit's container.
  auto container = ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container;
  c.client.stop_container(container, 1);
  c.client.remove_image(stage(3).at(0).id, ce::docker::Force::yes);
  auto r = run_ce({c.path(), "--", "cat", "/s1", "/s2", "/s3"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1\n2\n3\n");
  CHECK_THAT(r.err, Catch::Contains("docker-setup.sh:2) cached"));
  CHECK_THAT(r.err, Catch::Contains("docker-setup.sh:3) built in"));
  // Stages 2 and 3 gone with the container: both built again, from stage 1.
  c.client.remove_container(ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container,
                            ce::docker::Force::yes);
  c.client.remove_image(stage(3).at(0).id, ce::docker::Force::yes);
  c.client.remove_image(stage(2).at(0).id, ce::docker::Force::yes);
  r = run_ce({c.path(), "--", "cat", "/s1", "/s2", "/s3"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1\n2\n3\n");
  CHECK_THAT(r.err, Catch::Contains("docker-setup.sh:1) cached"));
  CHECK_THAT(r.err, Catch::Contains("docker-setup.sh:2) built in"));
  CHECK(c.images() == 3);
  CHECK(c.containers() == 1);
}

TEST_CASE("a base image that is missing, with no registry to pull from, gives one clear message",
          "[docker][fault]") {
  Computation c("next_stage && true\n", "#!/bin/sh\ntrue\n", {}, "ce-run-test/no-such-image:1");
  auto r = run_ce({c.path()});
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains(
                        "ce-run: error: cannot pull image 'ce-run-test/no-such-image:1': no registry is reachable ("));
  // (the rest of the line is the engine's own reason, then what to do)
  auto last = r.err.substr(r.err.rfind("ce-run: error:"));
  CHECK_THAT(last, Catch::EndsWith("); create the image locally (scripts/make-base-images makes busybox:latest and "
                                   "debian:bookworm) or load it with docker load\n"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 2);  // an info line, then the error
  CHECK(c.containers() == 0);
  CHECK(c.images() == 0);
}

namespace {
// A GFS on a 1 MiB tmpfs of its own, unmounted at the end.
struct SmallGfs {
  TempDir dir;
  explicit SmallGfs(const std::string& size = "1m") {
    sh(dir.path(), "mount -t tmpfs -o size=" + size + " ce-run-test-gfs .");
  }
  ~SmallGfs() { std::system(("umount -l '" + dir.str() + "'").c_str()); }
  void resize(const std::string& size) { sh(dir.path(), "mount -o remount,size=" + size + " ."); }
};
}  // namespace

TEST_CASE("a GFS too full to file the outputs: a clear error, nothing filed, the GFS consistent",
          "[docker][fault]") {
  // The command ignores its write errors and says it succeeded.
  GfsCall g("#!/bin/sh\necho run >> /tmp/runs\nhead -c 3000000 /dev/zero > \"$3\"\ncat \"$2\" > \"$4\"\n"
            "exit 0\n");
  SmallGfs small;
  auto args = g.args();
  args[1] = small.dir.str();
  auto r = run_ce(args);
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("ce-run: error: cannot file output 0 (joined) in the GFS: No space left on "
                                    "device; free space in " + small.dir.str() + " and run again; nothing was filed"));
  auto outputs = GfsCall::paths(r.out);
  REQUIRE(outputs.size() == 2);
  CHECK(r.out == outputs[0] + " MISSING\n" + outputs[1] + " MISSING\n");
  CHECK(g.runs() == 1);
  // What is left: the stored inputs and the call's lock, no output, no
  // record, no temporary file, no staging directory.
  auto left = files_under(small.dir.path());
  for (const auto& f : left) CHECK((f.rfind("tinputs/", 0) == 0 || f.find("/.locks/") != std::string::npos));
  CHECK(left.size() == 3);

  // With room, the same call computes, and verifies.
  small.resize("8m");
  auto ok = run_ce(args);
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == outputs[0] + " computed\n" + outputs[1] + " computed\n");
  CHECK(fs::file_size(outputs[0]) == 3000000);
  CHECK(g.runs() == 2);
  args.insert(args.begin() + 2, "--verify");
  CHECK(run_ce(args).exit_code == 0);
}

TEST_CASE("an input that does not fit in a full GFS is refused, leaving no partial copy", "[docker][fault]") {
  GfsCall g;
  SmallGfs small;
  sh(small.dir.path(), "head -c 2000000 /dev/zero > filler || true");
  auto args = g.args();
  args[1] = small.dir.str();
  std::ofstream(g.a) << std::string(200000, 'x');
  auto r = run_ce(args);
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::EndsWith("ce-run: error: cannot store input first (" + g.a +
                                    ") in the GFS: No space left on device; free space in " + small.dir.str() +
                                    " and run again\n"));
  for (const auto& f : files_under(small.dir.path()))
    CHECK((f == "filler" || f.find("/.locks/") != std::string::npos));
}

TEST_CASE("50 calls at once on one commit, half identical and half distinct: each distinct call computed once",
          "[docker][fault]") {
  GfsCall g("#!/bin/sh\nsleep 0.3\ncat \"$1\" > \"$3\"; cat \"$2\" > \"$4\"\n"
            "echo \"$(cat \"$1\")\" >> /tmp/runs\n");
  REQUIRE(run_ce({"--gfs", g.gfs.str(), g.c.path(), "--", "true"}).exit_code == 0);  // stages and container
  std::size_t containers = g.c.containers();
  std::vector<std::string> firsts;
  for (int i = 0; i < 25; ++i) {
    firsts.push_back((g.data.path() / ("distinct-" + std::to_string(i))).string());
    std::ofstream(firsts.back()) << "distinct " << i << "\n";
  }
  std::vector<int> pids;
  for (int i = 0; i < 50; ++i) {
    std::string first = i % 2 == 0 ? g.a : firsts[i / 2];
    pids.push_back(spawn_ce({"--gfs", g.gfs.str(), g.c.path(), first, g.b}));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  int failures = 0, unfinished = 0;
  for (int pid : pids) {
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ++unfinished;  // a deadlock: kill it so the test ends
        kill_and_reap(pid);
        status = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (status != 0) ++failures;
  }
  CHECK(unfinished == 0);
  CHECK(failures == 0);
  // Each distinct call once: alpha for the 25 identical ones, and each of
  // the 25 distinct inputs.
  std::map<std::string, int> computed;
  for (const auto& line : g.c.lines_in_containers("/tmp/runs")) ++computed[line];
  CHECK(computed.size() == 26);
  for (const auto& [input, n] : computed) {
    INFO(input);
    CHECK(n == 1);
  }
  // Every result is there and right.
  for (int i = 0; i < 25; ++i) {
    auto r = run_ce({"--gfs", g.gfs.str(), g.c.path(), firsts[i], g.b});
    auto outputs = GfsCall::paths(r.out);
    REQUIRE(outputs.size() == 2);
    CHECK(r.out == outputs[0] + " ok\n" + outputs[1] + " ok\n");
    CHECK(slurp(outputs[0]) == "distinct " + std::to_string(i) + "\n");
  }
  auto same = g.run();
  CHECK(same.out.find(" ok\n") != std::string::npos);
  CHECK(slurp(GfsCall::paths(same.out).at(0)) == "alpha\n");
  CHECK(g.c.containers() == containers);
  CHECK(g.c.client.list_containers({{"ce-run.computation", g.c.name}, {ce::stages::label::role, "build"}}).empty());
}
