// The Docker engine going away under ce-run, for real: dockerd stopped
// between runs, and killed while a command runs. Each test starts the engine
// again (scripts/start-docker) before it ends, failed or not.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <thread>

#include "runner/container_mapping.h"
#include "support/computation.h"
#include "support/engine_outage.h"

using namespace ce::test;

TEST_CASE("the engine stopped between two runs and started again: the next run restarts the commit's container",
          "[docker][fault][outage]") {
  GfsCall g;
  auto first = g.run();
  REQUIRE(first.exit_code == 0);
  Computation other("everytime && echo every\n");
  REQUIRE(run_ce({other.path(), "--", "true"}).exit_code == 0);
  auto container = ce::runner::read_mapping(other.path() + "/docker-container").mapping.entries.at(0).container;
  {
    EngineOutage outage(SIGTERM);
    REQUIRE(outage.stopped());
    // Meanwhile: a call that is done needs no engine; one that is not says
    // what is wrong and what to do.
    auto done = g.run();
    CHECK(done.exit_code == 0);
    auto outputs = GfsCall::paths(first.out);
    CHECK(done.out == outputs.at(0) + " ok\n" + outputs.at(1) + " ok\n");
    auto down = run_ce({other.path(), "--", "true"});
    CHECK(down.exit_code == 125);
    CHECK(down.err == "ce-run: error: cannot reach the Docker engine at unix:///var/run/docker.sock (No such file "
                      "or directory); start it with scripts/start-docker, or check DOCKER_HOST\n");
  }
  auto info = other.client.inspect_container(container);
  CHECK_FALSE(info.state.running);  // the engine stopped it on the way down
  auto again = run_ce({other.path(), "--", "echo", "after"});
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(again.out == "after\n");
  CHECK_THAT(again.err, Catch::Contains("starting the stopped container " + container.substr(0, 12)));
  CHECK_THAT(again.err, Catch::Contains("every"));
  CHECK(other.containers() == 1);
}

TEST_CASE("the engine killed during the command: exit 125 naming the engine, nothing filed, then it computes",
          "[docker][fault][outage]") {
  GfsCall g("#!/bin/sh\necho run >> /tmp/runs\necho half > \"$3\"\n"
            "[ -e \"$GFSDIR/fast\" ] || sleep 60\ncat \"$1\" > \"$3\"; echo 1 > \"$4\"\n");
  REQUIRE(run_ce({"--gfs", g.gfs.str(), g.c.path(), "--", "true"}).exit_code == 0);  // container made
  TempDir out;
  std::string command = "'" + ce_run_binary() + "' --gfs '" + g.gfs.str() + "' '" + g.c.path() + "' '" + g.a +
                        "' '" + g.b + "' >'" + out.str() + "/out' 2>'" + out.str() + "/err'";
  pid_t pid = ::fork();
  if (pid == 0) {
    int status = std::system(command.c_str());
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 99);
  }
  poll_until([&] { return g.runs() > 0; }, 15);
  REQUIRE(g.runs() == 1);
  int status = 0;
  {
    EngineOutage outage(SIGKILL);
    REQUIRE(outage.stopped());
    ::waitpid(pid, &status, 0);
    CHECK(WEXITSTATUS(status) == 125);
    std::string err = slurp(out.str() + "/err");
    CHECK_THAT(err, Catch::EndsWith("ce-run: error: the Docker engine at unix:///var/run/docker.sock went away "
                                    "while the command ran, so its result is unknown; nothing was filed in the "
                                    "GFS; start the engine (scripts/start-docker) and run again\n"));
    auto outputs = GfsCall::paths(slurp(out.str() + "/out"));
    REQUIRE(outputs.size() == 2);
    CHECK(slurp(out.str() + "/out") == outputs[0] + " MISSING\n" + outputs[1] + " MISSING\n");
    CHECK_FALSE(boost::filesystem::exists(outputs[0]));
    // Not done: a dry run, which needs no engine, says so.
    CHECK(g.run({"-n"}).out == outputs[0] + " MISSING\n" + outputs[1] + " MISSING\n");
  }
  std::ofstream((g.gfs.path() / "fast").string()) << "\n";
  auto r = g.run();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  auto outputs = GfsCall::paths(r.out);
  CHECK(r.out == outputs[0] + " computed\n" + outputs[1] + " computed\n");
  CHECK(slurp(outputs[0]) == "alpha\n");
  CHECK(g.runs() == 2);
  CHECK(g.c.containers() == 1);
}
