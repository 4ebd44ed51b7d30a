// ce-run end to end, as a user runs it: the built binary on computation
// directories in fresh Git repositories, against the real engine ([docker]);
// the cases ce-run answers before asking the engine anything run without
// one (NoEngine).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <csignal>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <optional>
#include <thread>

#include "docker/client.h"
#include "runner/container_mapping.h"
#include "runner/gfs.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <sstream>
#include "stages/stage_engine.h"
#include "support/ce_run.h"
#include "support/engine_fixture.h"
#include "support/computation.h"

using namespace ce::test;
using ce::docker::Client;
using ce::docker::Force;

TEST_CASE("ce-run applies stages, runs everytime steps and the command, the next run reuses the stages",
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
  CHECK(c.containers() == 1);  // the commit's container stays for the next run
  auto mapping = ce::runner::read_mapping(c.path() + "/docker-container");
  REQUIRE(mapping.problem.empty());
  REQUIRE(mapping.mapping.entries.size() == 1);
  std::string container = mapping.mapping.entries[0].container;

  auto second = run_ce({c.path(), "x"});
  CHECK(second.exit_code == 0);
  CHECK_THAT(second.err, Catch::Contains("stage 1 (" + c.path() + "/docker-setup.sh:1) cached"));
  CHECK_THAT(second.err, Catch::Contains("every-run: built-once"));
  CHECK_FALSE(Catch::Contains("building").match(second.err));
  CHECK_FALSE(Catch::Contains("made container").match(second.err));
  CHECK(c.images() == 1);
  CHECK(ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container == container);
  CHECK(c.containers() == 1);

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

TEST_CASE("a broken docker-setup.sh is refused with file:line:col and exit 125", "[cli]") {
  NoEngine no_engine;  // refused before the engine is asked anything
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
  CHECK(r.exit_code == 3);  // something would run
  CHECK_THAT(r.out, Catch::Contains("would build"));
  CHECK_THAT(r.out, Catch::Contains("would run"));
  CHECK_THAT(r.out, Catch::Contains("then run: " + c.path() + "/exec"));
  CHECK(c.images() == 0);
  CHECK(c.containers() == 0);
  CHECK_FALSE(boost::filesystem::exists(c.dir.path() / "docker-container"));
  run_ce({c.path()});
  auto again = run_ce({"-n", c.path()});
  CHECK_THAT(again.out, Catch::Contains("cached"));
  CHECK(again.exit_code == 3);  // not a GFS call: its command would run again

  // A GFS call: 3 while its result is missing, 0 once it is filed.
  GfsCall g;
  CHECK(g.run({"-n"}).exit_code == 3);
  REQUIRE(g.run().exit_code == 0);
  CHECK(g.run({"-n"}).exit_code == 0);
}

TEST_CASE("a dry run without a command shows the whole plan, then says what is missing", "[docker][cli]") {
  Computation c("next_stage && echo one\neverytime && echo two\n");
  sh(c.dir.path(), "git rm -q exec && git -c user.name=t -c user.email=t@e commit -q -m 'no exec'");
  auto r = run_ce({"-n", c.path()});
  CHECK(r.exit_code == 127);
  CHECK_THAT(r.out, Catch::Contains("stage 1"));
  CHECK_THAT(r.out, Catch::Contains("key "));
  CHECK_THAT(r.out, Catch::Contains("would build"));
  CHECK_THAT(r.out, Catch::Contains("container: would make one for commit"));
  CHECK_THAT(r.out, Catch::Contains("then run: nothing: there is no command (below)"));
  CHECK_THAT(r.err, Catch::EndsWith("ce-run: error: " + c.path() + "/exec: no exec file; add one, or give a command after --\n"));
  CHECK(c.images() == 0);
  CHECK(c.containers() == 0);
  // Not a dry run: the same error before anything is built.
  auto real = run_ce({c.path()});
  CHECK(real.exit_code == 127);
  CHECK(real.out.empty());
  CHECK(c.images() == 0);

  // A CompEval call: its outputs, then the same error.
  GfsCall g;
  sh(g.c.dir.path(), "git rm -q exec && git -c user.name=t -c user.email=t@e commit -q -m 'no exec'");
  auto call = g.run({"-n"});
  CHECK(call.exit_code == 127);
  auto outputs = g.paths(call.out);
  REQUIRE(outputs.size() == 2);
  CHECK(call.out == outputs[0] + " MISSING\n" + outputs[1] + " MISSING\n");
  CHECK_THAT(call.err, Catch::EndsWith("/exec: no exec file; add one, or give a command after --\n"));
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

TEST_CASE("lint lists the setup script's warnings with their places", "[cli]") {
  NoEngine no_engine;  // lint reads COMPDIR only
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
          "[docker][cli][fault]") {
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
  CHECK(c.containers() == 1);  // the commit's own, nothing else
}

TEST_CASE("a new commit gets a new container and the file lists both, git status stays clean", "[docker][cli]") {
  Computation c("everytime && true\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  c.commit("data.txt", "second commit\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  auto read = ce::runner::read_mapping(c.path() + "/docker-container");
  REQUIRE(read.mapping.entries.size() == 2);
  CHECK(read.mapping.entries[0].container != read.mapping.entries[1].container);
  CHECK(c.containers() == 2);
  sh(c.dir.path(), "test -z \"$(git status --porcelain)\"");
}

TEST_CASE("a damaged docker-container file is rebuilt from labels with a warning", "[docker][cli][fault]") {
  Computation c("");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  std::string good = slurp(c.path() + "/docker-container");
  auto before = ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container;
  for (const std::string& damage :
       {good.substr(0, good.size() - 30),                      // truncated in the entry
        good.substr(0, 10),                                    // truncated in the header
        std::string("ce-run docker-container 1\nnot a line at all\n"), std::string("garbage\x01\x02\xff\n"),
        std::string(4096, '\0'),                              // a crash's hole
        std::string("ce-run docker-container 99\nfuture format\n"),  // a later ce-run's
        std::string()}) {
    std::ofstream((c.dir.path() / "docker-container").string(), std::ios::binary) << damage;
    auto r = run_ce({c.path()});
    INFO(damage.size());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("warning: " + c.path() + "/docker-container: "));
    CHECK_THAT(r.err, Catch::Contains("rebuilding it from the containers' labels"));
    CHECK(ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container == before);
    CHECK(ce::runner::read_mapping(c.path() + "/docker-container").problem.empty());
  }
  CHECK(c.containers() == 1);
}

TEST_CASE("a removed container is recreated and a stopped one restarted", "[docker][cli][fault]") {
  Computation c("everytime && echo every\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  auto first = ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container;
  c.client.stop_container(first, 1);
  auto restarted = run_ce({c.path()});
  CHECK(restarted.exit_code == 0);
  CHECK_THAT(restarted.err, Catch::Contains("starting the stopped container " + first.substr(0, 12)));
  c.client.remove_container(first, Force::yes);
  auto recreated = run_ce({c.path()});
  CHECK(recreated.exit_code == 0);
  CHECK_THAT(recreated.err, Catch::Contains("the container " + first.substr(0, 12) + " of commit"));
  CHECK_THAT(recreated.err, Catch::Contains("is gone; making a new one"));
  CHECK(ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container != first);
  CHECK(c.containers() == 1);
}

TEST_CASE("the computation has no network by default and gets one when docker.conf asks", "[docker][cli]") {
  Computation c("");
  auto r = run_ce({c.path(), "--", "ls", "/sys/class/net"});
  CHECK(r.out == "lo\n");
  std::ofstream((c.dir.path() / "docker.conf").string(), std::ios::app) << "network = \"bridge\"\n";
  sh(c.dir.path(), "git -c user.name=t -c user.email=t@e commit -q -am net");
  auto bridged = run_ce({c.path(), "--", "ls", "/sys/class/net"});
  CHECK(bridged.out == "eth0\nlo\n");
}

TEST_CASE("the command runs as the invoking user", "[docker][cli]") {
  // This once checked that a file the command wrote to the GFS belongs to
  // the invoking user. With the GFS mounted read-only in the container (a
  // security fix) the command can write nothing there, so what is left to
  // check is the user it runs as: SUDO_UID's.
  Computation c("");
  TempDir gfs;
  // Under sudo, COMPDIR and the GFS must be the user's own.
  sh(c.dir.path(), "chown -R 4321:4322 . '" + gfs.str() + "'");
  ::setenv("SUDO_UID", "4321", 1);
  ::setenv("SUDO_GID", "4322", 1);
  auto r = run_ce({"--gfs", gfs.str(), c.path(), "--", "id", "-u"});
  ::unsetenv("SUDO_UID");
  ::unsetenv("SUDO_GID");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "4321\n");
}

TEST_CASE("Ctrl-C stops the command in the container too and exits 130, a timeout exits 124", "[docker][cli]") {
  Computation c("");
  int pid = spawn_ce({c.path(), "--", "sh", "-c", "sleep 300; echo not-stopped"});
  // Wait until the command runs in the commit's container.
  std::string container;
  for (int i = 0; i < 200 && container.empty(); ++i) {
    auto read = ce::runner::read_mapping(c.path() + "/docker-container");
    if (!read.mapping.entries.empty()) container = read.mapping.entries[0].container;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_FALSE(container.empty());
  std::string ps;
  for (int i = 0; i < 100 && ps.find("sleep 300") == std::string::npos; ++i) {
    ps.clear();
    ce::docker::ExecSpec spec;
    spec.cmd = {"ps", "-o", "args"};
    c.client.run_exec(container, spec, [&](ce::docker::StreamKind, std::string_view b) { ps.append(b); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_THAT(ps, Catch::Contains("sleep 300"));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  ps.clear();
  ce::docker::ExecSpec spec;
  spec.cmd = {"ps", "-o", "args"};
  c.client.run_exec(container, spec, [&](ce::docker::StreamKind, std::string_view b) { ps.append(b); });
  CHECK_FALSE(Catch::Contains("sleep 300").match(ps));

  std::ofstream((c.dir.path() / "docker.conf").string(), std::ios::app) << "timeout = 1\n";
  sh(c.dir.path(), "git -c user.name=t -c user.email=t@e commit -q -am timeout");
  auto timed = run_ce({c.path(), "--", "sleep", "60"});
  CHECK(timed.exit_code == 124);
  CHECK_THAT(timed.err, Catch::Contains("the command ran longer than docker.conf's timeout (1 s) and was stopped"));
}

namespace {
Poco::JSON::Object::Ptr read_report(const boost::filesystem::path& path) {
  std::ifstream in(path.string());
  std::ostringstream text;
  text << in.rdbuf();
  Poco::JSON::Parser parser;
  return parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
}
}  // namespace

TEST_CASE("the --report JSON matches what happened, also when the run fails", "[docker][cli]") {
  Computation c("next_stage && echo one > /one\neverytime && cat /one\n");
  TempDir out;
  auto report_path = out.path() / "report.json";
  REQUIRE(run_ce({"--report", report_path.string(), c.path(), "a"}).exit_code == 0);
  auto r = read_report(report_path);
  CHECK(r->getValue<int>("version") == 1);
  auto computation = r->getObject("computation");
  CHECK(computation->getValue<std::string>("name") == c.name);
  CHECK(computation->getValue<std::string>("commit").size() == 40);
  CHECK(computation->getValue<std::string>("id").size() == 40);
  CHECK_FALSE(computation->getValue<bool>("dirty"));
  CHECK(r->getObject("image")->getValue<std::string>("base") == "busybox:latest");
  CHECK(r->getObject("container")->getValue<bool>("created"));
  auto steps = r->getArray("steps");
  REQUIRE(steps->size() == 2);
  CHECK(steps->getObject(0)->getValue<std::string>("kind") == "stage");
  CHECK(steps->getObject(0)->getValue<std::string>("status") == "built");
  CHECK(steps->getObject(0)->getValue<std::string>("key").size() == 64);
  CHECK(steps->getObject(1)->getValue<std::string>("status") == "ran");
  CHECK(steps->getObject(1)->isNull("key"));
  CHECK(r->getValue<int>("exit_code") == 0);
  CHECK(r->isNull("error"));

  REQUIRE(run_ce({"--report", report_path.string(), c.path()}).exit_code == 0);
  r = read_report(report_path);
  CHECK(r->getArray("steps")->getObject(0)->getValue<std::string>("status") == "cached");
  CHECK_FALSE(r->getObject("container")->getValue<bool>("created"));

  CHECK(run_ce({"--report", report_path.string(), c.path(), "--", "sh", "-c", "exit 3"}).exit_code == 3);
  CHECK(read_report(report_path)->getValue<int>("exit_code") == 3);

  c.commit("docker-setup.sh", "next_stage && echo one > /one\neverytime && exit 4\n");
  auto failed = run_ce({"--report", report_path.string(), c.path()});
  CHECK(failed.exit_code == 125);
  r = read_report(report_path);
  CHECK(r->getValue<int>("exit_code") == 125);
  CHECK_THAT(r->getValue<std::string>("error"), Catch::StartsWith("everytime step 2 ("));
  CHECK(r->getArray("steps")->getObject(1)->getValue<std::string>("status") == "failed");
}

TEST_CASE("the wordfreq example installs a compiler in a stage, builds in an everytime step and computes",
          "[docker][cli]") {
  TempDir repos;
  std::string make_repos = (boost::filesystem::path(__FILE__).parent_path().parent_path() / "examples" /
                            "make-repos").string();
  sh(repos.path(), "'" + make_repos + "' " + repos.str());
  auto dir = repos.path() / "wordfreq";
  // A name of its own, so that cleaning up spares the demo's container.
  std::string name = "wordfreq-test-" + std::to_string(::getpid());
  sh(dir, "sed -i 's/^name = .*/name = \"" + name + "\"/' docker.conf && git -c user.name=t -c user.email=t@e "
          "commit -q -am rename");
  Client client;
  auto r = run_ce({"--gfs", repos.str(), dir.string(), (dir / "sample.txt").string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  REQUIRE(r.out.size() > 10);
  std::string output = r.out.substr(0, r.out.find(' '));
  CHECK(r.out == output + " computed\n");
  std::ifstream in(output);
  std::ostringstream text;
  text << in.rdbuf();
  CHECK(text.str() == "5 the\n4 and\n4 container\n3 a\n3 computation\n3 in\n3 run\n2 is\n2 it\n2 its\n");
  for (const auto& c : client.list_containers({{"ce-run.computation", name}})) client.remove_container(c.id, Force::yes);
  remove_images(client, {{"ce-run.computation", name}});
}

TEST_CASE("status lists the commit's container and the stage images, why says what changed", "[docker][cli]") {
  Computation c("next_stage && echo one > /one\nnext_stage && echo two > /two\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  auto status = run_ce({"status", c.path()});
  CHECK(status.exit_code == 0);
  auto container = ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container;
  CHECK_THAT(status.out, Catch::Contains("  " + container.substr(0, 12) + "  commit "));
  CHECK_THAT(status.out, Catch::Contains("ce/" + c.name + ":stage-1"));
  CHECK_THAT(status.out, Catch::Contains("ce/" + c.name + ":stage-2"));
  CHECK_THAT(status.out, Catch::Contains("disk: 2 stage images"));

  auto same = run_ce({"why", c.path()});
  CHECK_THAT(same.out, Catch::Contains("commit: unchanged"));
  CHECK_THAT(same.out, Catch::Contains("stages: unchanged (2)"));
  c.commit("docker-setup.sh", "next_stage && echo one > /one\nnext_stage && echo TWO > /two\n");
  auto why = run_ce({"why", c.path()});
  CHECK_THAT(why.out, Catch::Contains("  commit: "));
  CHECK_THAT(why.out, Catch::Contains("COMPDIR's tree: changed"));
  CHECK_THAT(why.out, Catch::Contains("base image busybox:latest: unchanged"));
  CHECK_THAT(why.out, Catch::Contains("stage 2 (" + c.path() + "/docker-setup.sh:2): changed, or a stage before it changed"));
}

TEST_CASE("gc keeps the most recent commits' containers and stages, and removes the rest", "[docker][cli]") {
  Computation c("next_stage && echo one > /one\nnext_stage && echo two > /two\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  auto old_container = ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.at(0).container;
  c.commit("docker-setup.sh", "next_stage && echo one > /one\nnext_stage && echo TWO > /two\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  CHECK(c.containers() == 2);
  CHECK(c.images() == 3);  // stage 1, the old stage 2, the new stage 2

  auto dry = run_ce({"gc", "-n", "--keep", "1", c.path()});
  CHECK(dry.exit_code == 0);
  CHECK_THAT(dry.out, Catch::Contains("would remove container " + old_container.substr(0, 12)));
  CHECK_THAT(dry.out, Catch::Contains("would remove 1 containers and 1 stage images"));
  CHECK(c.containers() == 2);
  CHECK(c.images() == 3);

  auto gc = run_ce({"gc", "--keep", "1", c.path()});
  CHECK(gc.exit_code == 0);
  CHECK_THAT(gc.out, Catch::Contains("removed 1 containers and 1 stage images"));
  CHECK(c.containers() == 1);
  CHECK(c.images() == 2);
  CHECK(ce::runner::read_mapping(c.path() + "/docker-container").mapping.entries.size() == 1);
  CHECK(run_ce({c.path()}).exit_code == 0);  // the kept commit still runs from its cache
  CHECK_FALSE(Catch::Contains("building").match(run_ce({c.path()}).err));
}

TEST_CASE("shell opens a shell in the commit's container, on a real TTY or on pipes", "[docker][cli]") {
  Computation c("");
  CHECK(run_ce({"shell", c.path()}).exit_code == 125);  // no container yet
  REQUIRE(run_ce({c.path()}).exit_code == 0);

  // Pipes: stdin is the script.
  TempDir io;
  std::ofstream((io.path() / "in").string()) << "echo piped $(id -u); exit 5\n";
  std::string command = "'" + ce_run_binary() + "' shell '" + c.path() + "' < '" + (io.path() / "in").string() +
                        "' > '" + (io.path() / "out").string() + "' 2>&1";
  int status = std::system(command.c_str());
  CHECK(WEXITSTATUS(status) == 5);
  std::ifstream out((io.path() / "out").string());
  std::string line;
  std::getline(out, line);
  CHECK(line == "piped 0");

  // A terminal: a pseudo-terminal drives it as a person would.
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string binary = ce_run_binary(), path = c.path();
    ::execl(binary.c_str(), binary.c_str(), "shell", path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string typed = "tty -s && echo on-a-tty-$((6*7)); exit\r";
  std::string seen;
  bool sent = false;
  char buffer[1024];
  for (int i = 0; i < 300; ++i) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n <= 0) break;
      seen.append(buffer, static_cast<std::size_t>(n));
    }
    if (!sent && i > 10) {  // the shell is up
      (void)!::write(master, typed.data(), typed.size());
      sent = true;
    }
  }
  ::waitpid(pid, &status, 0);
  ::close(master);
  INFO(seen);
  CHECK_THAT(seen, Catch::Contains("on-a-tty-42"));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("with --incremental a descendant commit's container continues from a snapshot of its ancestor's",
          "[docker][cli]") {
  Computation c("next_stage && true\neverytime && echo built >> /var/tmp/builds\n");
  REQUIRE(run_ce({"--incremental", c.path()}).exit_code == 0);
  c.commit("notes.txt", "a descendant commit\n");
  auto r = run_ce({"--incremental", c.path(), "--", "sh", "-c", "wc -l < /var/tmp/builds"});
  INFO(r.err);
  CHECK_THAT(r.err, Catch::Contains("continuing from a snapshot of the container of ancestor commit"));
  CHECK(r.out == "2\n");  // the ancestor's build, then this commit's
  c.commit("notes.txt", "another one, not incremental\n");
  CHECK(run_ce({c.path(), "--", "sh", "-c", "wc -l < /var/tmp/builds"}).out == "1\n");
  // gc removes the snapshot with the containers it no longer keeps.
  auto gc = run_ce({"gc", "--keep", "1", c.path()});
  CHECK_THAT(gc.out, Catch::Contains("removed 2 containers and 1 stage images"));
}

TEST_CASE("without network, lint warns about everytime steps that need it and a failing one says why",
          "[docker][cli]") {
  Computation c("everytime && wget -q -O /dev/null http://deb.invalid/\n");
  auto lint = run_ce({"lint", c.path()});
  CHECK(lint.exit_code == 1);
  CHECK_THAT(lint.out, Catch::Contains("docker-setup.sh:1:1: warning: this everytime step looks as if it needs the "
                                       "network (wget ), but the computation's container has none"));
  auto r = run_ce({c.path()});
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("everytime step 1 (" + c.path() + "/docker-setup.sh:1) failed with exit code"));
  CHECK_THAT(r.err, Catch::Contains("the computation's container has no network (docker.conf network = \"none\")"));
}

TEST_CASE("runs of the same commit share its container and run their commands at the same time", "[docker][cli]") {
  Computation c("everytime && true\n");
  REQUIRE(run_ce({c.path()}).exit_code == 0);
  TempDir gfs;
  // Each run waits until both have started: only possible if they overlap
  // (and share the container, whose /tmp holds both markers).
  std::string script = "touch /tmp/$1; i=0; while [ ! -e /tmp/a ] || [ ! -e /tmp/b ]; do "
                       "i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.1; done";
  int a = spawn_ce({"--gfs", gfs.str(), c.path(), "--", "sh", "-c", script, "x", "a"});
  int b = spawn_ce({"--gfs", gfs.str(), c.path(), "--", "sh", "-c", script, "x", "b"});
  int status_a = 0, status_b = 0;
  ::waitpid(a, &status_a, 0);
  ::waitpid(b, &status_b, 0);
  CHECK(WEXITSTATUS(status_a) == 0);
  CHECK(WEXITSTATUS(status_b) == 0);
  CHECK(c.containers() == 1);
}

TEST_CASE("a socket ce-run may not use is reported before anything else", "[docker][cli]") {
  TempDir empty;  // not even a computation: the socket comes first
  std::string command = "setpriv --reuid=65534 --regid=65534 --clear-groups '" + ce_run_binary() + "' '" +
                        empty.str() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  int status = ::pclose(pipe);
  CHECK(WEXITSTATUS(status) == 125);
  CHECK(out == "ce-run: error: permission denied on the Docker engine socket unix:///var/run/docker.sock: ce-run "
               "must run as root or as a member of the docker group\n");
}

// ---- results in the GFS ---------------------------------------------------


TEST_CASE("a call computes once, the next returns ok without any engine", "[docker][gfs]") {
  GfsCall g;
  auto first = g.run();
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  auto outputs = g.paths(first.out);
  REQUIRE(outputs.size() == 2);
  CHECK(first.out == outputs[0] + " computed\n" + outputs[1] + " computed\n");
  CHECK(slurp(outputs[0]) == "alpha\nbeta\n");
  CHECK(slurp(outputs[1]) == "6\n");
  // c_NAME/CID12/KK/IN0_IN1 with 12 hex digits of each input's SHA-1
  auto expected_ins = ce::runner::sha1_file(g.a).substr(0, 12) + "_" + ce::runner::sha1_file(g.b).substr(0, 12);
  CHECK(outputs[0].rfind(g.gfs.str() + "/c_" + g.c.name + "/", 0) == 0);
  CHECK(outputs[0].substr(outputs[0].size() - 25 - 3) == "00/" + expected_ins);
  CHECK(outputs[1].substr(outputs[1].size() - 25 - 3) == "01/" + expected_ins);
  auto stored = ce::runner::sha1_file(g.a);
  CHECK(slurp(g.gfs.str() + "/tinputs/" + stored.substr(0, 2) + "/" + stored.substr(2, 10)) == "alpha\n");
  CHECK(g.runs() == 1);

  // No engine at all: the result comes from the GFS alone.
  ::setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock", 1);
  auto second = g.run();
  ::unsetenv("DOCKER_HOST");
  CHECK(second.exit_code == 0);
  CHECK(second.out == outputs[0] + " ok\n" + outputs[1] + " ok\n");
  CHECK(second.err.empty());
  CHECK(g.runs() == 1);
}

TEST_CASE("a new commit recomputes into a new directory and the old results stay", "[docker][gfs]") {
  GfsCall g;
  auto first = g.paths(g.run().out);
  g.c.commit("exec", std::string(pair_exec) + "echo changed >> \"$4\"\n");
  auto second = g.run();
  CHECK(second.exit_code == 0);
  auto outputs = g.paths(second.out);
  CHECK(outputs[0] != first[0]);
  CHECK(slurp(outputs[1]) == "6\nchanged\n");
  CHECK(slurp(first[1]) == "6\n");
  CHECK(g.runs() == 2);
  // A commit that leaves COMPDIR alone keeps the computation ID: no re-run.
  sh(g.c.dir.path(), "git -c user.name=t -c user.email=t@e commit -q --allow-empty -m nothing");
  CHECK(g.run().out == outputs[0] + " ok\n" + outputs[1] + " ok\n");
}

TEST_CASE("a failing exec or a forgotten output promotes nothing, the staging directory is kept", "[docker][gfs]") {
  GfsCall failing("#!/bin/sh\necho partial > \"$3\"\nexit 1\n");
  auto r = failing.run();
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("exited with 1; nothing was filed in the GFS; the outputs so far are kept for "
                                    "inspection in the container at /.ce-run/staging/"));
  auto outputs = failing.paths(r.out);
  REQUIRE(outputs.size() == 2);
  CHECK(r.out == outputs[0] + " MISSING\n" + outputs[1] + " MISSING\n");
  CHECK_FALSE(boost::filesystem::exists(outputs[0]));

  GfsCall forgetful("#!/bin/sh\necho only-one > \"$3\"\n");
  auto f = forgetful.run();
  CHECK(f.exit_code == 125);
  CHECK_THAT(f.err, Catch::Contains("output 1 (size) was not written to "));
  CHECK_FALSE(boost::filesystem::exists(forgetful.paths(f.out)[0]));
  CHECK(forgetful.run({"-n"}).out.find("MISSING") != std::string::npos);
}

TEST_CASE("kill -9 during exec leaves nothing that counts as done, the command stops, the next call recomputes",
          "[docker][gfs][fault]") {
  GfsCall g("#!/bin/sh\necho run >> /tmp/runs\necho half > \"$3\"\n"
            "[ -e \"$GFSDIR/fast\" ] || sleep 31\ncat \"$1\" > \"$3\"; echo 1 > \"$4\"\n");
  int pid = spawn_ce({"--gfs", g.gfs.str(), g.c.path(), g.a, g.b});
  poll_until([&] { return g.runs() > 0; }, 15);
  REQUIRE(g.runs() == 1);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::ofstream((g.gfs.path() / "fast").string()) << "\n";
  auto r = g.run();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  auto outputs = g.paths(r.out);
  CHECK(r.out == outputs[0] + " computed\n" + outputs[1] + " computed\n");
  CHECK(slurp(outputs[0]) == "alpha\n");
  CHECK(g.runs() == 2);
  // The killed call's command stopped with it, not left to write beside the next.
  auto ps = run_ce({"--gfs", g.gfs.str(), g.c.path(), "--", "ps", "-o", "args"});
  CHECK_FALSE(Catch::Contains("sleep 31").match(ps.out));
  CHECK(g.c.containers() == 1);
}

TEST_CASE("ten identical calls at once run exec exactly once", "[docker][gfs]") {
  GfsCall g("#!/bin/sh\necho run >> /tmp/runs\nsleep 1\ncat \"$1\" > \"$3\"; cat \"$2\" > \"$4\"\n");
  REQUIRE(run_ce({"--gfs", g.gfs.str(), g.c.path(), "--", "true"}).exit_code == 0);  // stages and container
  std::vector<int> pids;
  for (int i = 0; i < 10; ++i) pids.push_back(spawn_ce({"--gfs", g.gfs.str(), g.c.path(), g.a, g.b}));
  int failures = 0;
  for (int pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  CHECK(failures == 0);
  CHECK(g.runs() == 1);
}

TEST_CASE("verify catches a flipped byte, and a damaged record never counts as done", "[docker][gfs]") {
  GfsCall g;
  auto outputs = g.paths(g.run().out);
  CHECK(g.run({"--verify"}).exit_code == 0);
  {
    std::fstream f(outputs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put('A');
  }
  auto v = g.run({"--verify"});
  CHECK(v.exit_code == 1);
  CHECK_THAT(v.out, Catch::StartsWith(outputs[0] + ": SHA-256 "));
  CHECK_THAT(v.out, Catch::Contains(", recorded "));
  CHECK_THAT(v.err, Catch::Contains("the next call computes it again"));
  auto recomputed = g.run();
  CHECK(recomputed.out == outputs[0] + " computed\n" + outputs[1] + " computed\n");
  CHECK(slurp(outputs[0]) == "alpha\nbeta\n");
  CHECK(g.runs() == 2);

  auto record = boost::filesystem::path(outputs[0]).parent_path().parent_path() / "done" /
                boost::filesystem::path(outputs[0]).filename();
  std::ofstream(record.string(), std::ios::trunc) << "ce-run call record 1\nexit_code 0\n";  // cut short
  auto again = g.run();
  CHECK(again.exit_code == 0);
  CHECK(again.out == outputs[0] + " computed\n" + outputs[1] + " computed\n");
  CHECK(g.runs() == 3);
}

TEST_CASE("the number of inputs and unreadable inputs are checked, naming them", "[gfs]") {
  NoEngine no_engine;  // checked before the engine is asked anything
  GfsCall g;
  auto one = run_ce({"--gfs", g.gfs.str(), g.c.path(), g.a});
  CHECK(one.exit_code == 125);
  CHECK(one.err == "ce-run: error: expected 2 inputs (first, second), got 1\n");
  auto missing = run_ce({"--gfs", g.gfs.str(), g.c.path(), g.a, "/nonexistent/b"});
  CHECK(missing.err == "ce-run: error: input 2 (second): /nonexistent/b is not a readable regular file (No such file or directory)\n");
  auto directory = run_ce({"--gfs", g.gfs.str(), g.c.path(), g.data.str(), g.b});
  CHECK(directory.err == "ce-run: error: input 1 (first): " + g.data.str() + " is not a readable regular file (a directory)\n");
}

TEST_CASE("gc removes staging directories of dead calls and, on request, results no branch reaches", "[docker][gfs]") {
  GfsCall g("#!/bin/sh\necho run >> /tmp/runs\n[ -e \"$GFSDIR/ok\" ] || exit 3\n"
            "cat \"$1\" > \"$3\"; cat \"$2\" > \"$4\"\n");
  CHECK(g.run().exit_code == 3);  // leaves its staging directory
  auto dry = run_ce({"gc", "-n", "--gfs", g.gfs.str(), g.c.path()});
  CHECK_THAT(dry.out, Catch::Contains("would remove staging directory /var/lib/ce-run/staging/"));
  auto gc = run_ce({"gc", "--gfs", g.gfs.str(), g.c.path()});
  CHECK_THAT(gc.out, Catch::Contains("removed staging directory "));
  CHECK_FALSE(Catch::Contains("staging").match(run_ce({"gc", "-n", "--gfs", g.gfs.str(), g.c.path()}).out));

  std::ofstream((g.gfs.path() / "ok").string()) << "\n";
  auto old_outputs = g.paths(g.run().out);
  g.c.commit("notes", "new commit, new computation ID\n");
  auto new_outputs = g.paths(g.run().out);
  REQUIRE(old_outputs[0] != new_outputs[0]);
  auto results = run_ce({"gc", "-n", "--results", "--gfs", g.gfs.str(), g.c.path()});
  INFO(results.out << results.err);
  CHECK_THAT(results.out, Catch::Contains("would remove the results of 1 computation IDs"));
  CHECK(boost::filesystem::exists(old_outputs[0]));
  run_ce({"gc", "--results", "--gfs", g.gfs.str(), g.c.path()});
  CHECK_FALSE(boost::filesystem::exists(old_outputs[0]));
  CHECK(boost::filesystem::exists(new_outputs[0]));
}

TEST_CASE("the report lists the call's inputs and outputs", "[docker][gfs]") {
  GfsCall g;
  auto report = g.gfs.path() / "report.json";
  REQUIRE(g.run({"--report", report.string()}).exit_code == 0);
  auto r = read_report(report);
  auto inputs = r->getArray("inputs");
  REQUIRE(inputs->size() == 2);
  CHECK(inputs->getObject(0)->getValue<std::string>("name") == "first");
  CHECK(inputs->getObject(0)->getValue<std::string>("sha1") == ce::runner::sha1_file(g.a));
  auto outputs = r->getArray("outputs");
  REQUIRE(outputs->size() == 2);
  CHECK(outputs->getObject(1)->getValue<std::string>("name") == "size");
  CHECK(outputs->getObject(1)->getValue<std::string>("status") == "computed");
  REQUIRE(g.run({"--report", report.string()}).exit_code == 0);
  CHECK(read_report(report)->getArray("outputs")->getObject(0)->getValue<std::string>("status") == "cached");
}
