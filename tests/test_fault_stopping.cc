// Stopping a run stops everything it started, and nothing else: ce-run
// killed with -9 in each kind of run, SIGTERM to a command whose children
// ignore it, a closed standard output, a signal while waiting for a lock, a
// remote engine that reports a pid of this host, and a forged lock note.
// Against the real engine.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "docker/cancellation.h"
#include "runner/container_mapping.h"
#include "runner/exec_notes.h"
#include "runner/cli/run_command.h"
#include "runner/supervisor.h"
#include "stages/stage_key.h"
#include "support/computation.h"
#include "support/engine_proxy.h"

using namespace ce::test;
namespace fs = boost::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Waits up to `seconds` for `path` to exist in a running container of c's.
bool wait_for_file(Computation& c, const std::string& path, double seconds = 60) {
  return poll_until([&] { return c.exists_in_containers(path); }, seconds);
}

std::string commit_container(const Computation& c) {
  auto read = ce::runner::read_mapping(c.path() + "/docker-container");
  REQUIRE(read.mapping.entries.size() >= 1);
  return read.mapping.entries[0].container;
}

// Seconds until only the engine's init and its sleep run in the container
// (at most `limit`; more means it never happened).
double seconds_until_idle(ce::docker::Client& client, const std::string& container, double limit = 20) {
  auto start = Clock::now();
  while (client.container_process_count(container) > 2) {
    double spent = std::chrono::duration<double>(Clock::now() - start).count();
    if (spent > limit) return spent;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int wait_exit(int pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Waits up to `seconds` for pid to end; its exit code, or -1 if it did not.
int wait_exit_within(int pid, double seconds) {
  for (auto end = Clock::now() + std::chrono::duration<double>(seconds); Clock::now() < end;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace

TEST_CASE("kill -9 of ce-run stops what it ran in the container within seconds, for every kind of run",
          "[docker][fault]") {
  GfsCall g("#!/bin/sh\ntouch /tmp/exec-started\nsleep 60\n");
  REQUIRE(run_ce({"--gfs", g.gfs.str(), g.c.path(), "--", "true"}).exit_code == 0);  // the commit's container
  std::string container = commit_container(g.c);
  auto args = [&](std::vector<std::string> tail) {
    std::vector<std::string> all = {"--gfs", g.gfs.str()};
    all.insert(all.end(), tail.begin(), tail.end());
    return all;
  };
  struct Kind {
    const char* what;
    std::vector<std::string> args;
    const char* marker;
  };
  std::vector<Kind> kinds = {
      {"a call's exec", args({g.c.path(), g.a, g.b}), "/tmp/exec-started"},
      {"a plain command", args({g.c.path(), "--", "sh", "-c", "touch /tmp/command-started; sleep 60"}),
       "/tmp/command-started"},
      {"a shell", {"shell", g.c.path(), "--", "sh", "-c", "touch /tmp/shell-started; sleep 60"}, "/tmp/shell-started"},
  };
  for (const auto& kind : kinds) {
    INFO(kind.what);
    int pid = spawn_ce(kind.args);
    REQUIRE(wait_for_file(g.c, kind.marker));
    REQUIRE(g.c.client.container_process_count(container) > 2);
    ::kill(pid, SIGKILL);
    wait_exit(pid);
    double seconds = seconds_until_idle(g.c.client, container);
    WARN(kind.what << ": the container was idle " << seconds << " s after ce-run's death");
    CHECK(seconds < 5);
  }

  // An everytime step, in a computation of its own.
  TempDir gfs;
  Computation every("everytime && touch /tmp/every-started && sleep 60\n");
  int pid = spawn_ce({"--gfs", gfs.str(), every.path(), "--", "true"});
  REQUIRE(wait_for_file(every, "/tmp/every-started"));
  std::string every_container = commit_container(every);
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  double seconds = seconds_until_idle(every.client, every_container);
  WARN("an everytime step: the container was idle " << seconds << " s after ce-run's death");
  CHECK(seconds < 5);
}

TEST_CASE("SIGTERM stops the command and every process it started, those that ignore it and orphans included",
          "[docker][fault]") {
  TempDir gfs;
  Computation c("");
  int pid = spawn_ce({"--gfs", gfs.str(), c.path(), "--", "sh", "-c",
                      "(trap '' TERM; while :; do sleep 1; done) & touch /tmp/started; wait"});
  REQUIRE(wait_for_file(c, "/tmp/started"));
  std::string container = commit_container(c);
  ::kill(pid, SIGTERM);
  CHECK(wait_exit(pid) == 143);
  // ce-run returns once its supervisor has stopped everything: nothing to wait for.
  CHECK(c.client.container_process_count(container) == 2);  // init and sleep
}

TEST_CASE("a closed standard output stops the run within seconds, with exit 141", "[docker][fault]") {
  Computation c("");
  REQUIRE(run_ce({c.path(), "--", "true"}).exit_code == 0);
  TempDir dir;
  std::string script = (dir.path() / "pipe.sh").string();
  std::ofstream(script) << "timeout 60 '" << ce_run_binary() << "' -q '" << c.path()
                        << "' -- yes 2>/dev/null | head -1; echo \"${PIPESTATUS[0]}\"\n";
  auto start = Clock::now();
  FILE* pipe = ::popen(("bash '" + script + "'").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  ::pclose(pipe);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  CHECK(out == "y\n141\n");
  WARN("ce-run ended " << seconds << " s after it started, its reader gone");
  CHECK(c.client.container_process_count(commit_container(c)) == 2);
}

TEST_CASE("SIGINT while waiting for an identical call's lock ends ce-run then, and its exec never runs",
          "[docker][fault]") {
  GfsCall g("#!/bin/sh\necho run >> /tmp/runs\nwhile [ ! -e \"$GFSDIR/fast\" ]; do sleep 0.1; done\n"
            "cat \"$1\" > \"$3\"; cat \"$2\" > \"$4\"\n");
  int first = spawn_ce(g.args());
  poll_until([&] { return g.runs() > 0; }, 60);
  REQUIRE(g.runs() == 1);
  TempDir logs;
  std::string log = (logs.path() / "second.err").string();
  int second = spawn_ce(g.args(), log);
  bool waiting = false;
  for (int i = 0; i < 1200 && !waiting; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    waiting = slurp(log).find("waiting for another ce-run computing the same call") != std::string::npos;
  }
  REQUIRE(waiting);
  ::kill(second, SIGINT);
  int code = wait_exit_within(second, 5);
  CHECK(code == 130);
  if (code < 0) ::kill(second, SIGKILL);
  std::ofstream((g.gfs.path() / "fast").string()) << "\n";
  CHECK(wait_exit(first) == 0);
  CHECK(g.runs() == 1);  // the interrupted call never ran its exec
}

TEST_CASE("a cancelled token stops a supervised exec before it starts, and one that runs at once",
          "[docker][fault]") {
  TempDir gfs;
  Computation c("");
  REQUIRE(run_ce({"--gfs", gfs.str(), c.path(), "--", "true"}).exit_code == 0);
  std::string container = commit_container(c);
  ce::docker::ExecSpec spec;
  spec.cmd = {"sh", "-c", "touch /tmp/ran; sleep 60"};
  auto discard = [](ce::docker::StreamKind, std::string_view) {};
  ce::docker::Cancellation before;
  before.cancel();
  std::string created;
  CHECK(c.client.run_supervised_exec(container, spec, ce::runner::supervisor_in_container, discard,
                                     [&](const std::string& id) { created = id; }, &before) == 143);
  CHECK_FALSE(created.empty());
  CHECK_FALSE(c.client.exec_state(created).running);
  CHECK_FALSE(exists_in_container(c.client, container, "/tmp/ran"));

  ce::docker::Cancellation during;
  std::thread stopper([&] {
    ce::docker::Client client;  // (its own, beside the exec's)
    if (poll_until([&] { return exists_in_container(client, container, "/tmp/ran"); }, 60)) during.cancel();
  });
  auto start = Clock::now();
  int code = c.client.run_supervised_exec(container, spec, ce::runner::supervisor_in_container, discard, {}, &during);
  stopper.join();
  CHECK(code == 143);
  CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 30);
  CHECK(c.client.container_process_count(container) == 2);
}

TEST_CASE("a remote engine's pids are never signalled on this host", "[docker][fault]") {
  // A host process the engine will claim as the command's.
  pid_t victim = ::fork();
  if (victim == 0) {
    ::execlp("sleep", "sleep", "120", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  Computation c("everytime && true\n");
  REQUIRE(run_ce({c.path(), "--", "true"}).exit_code == 0);
  {
    EngineProxy proxy(victim);
    TempDir gfs;
    int pid = spawn_ce({"--gfs", gfs.str(), c.path(), "--", "sh", "-c", "touch /tmp/started; sleep 60"}, {},
                       {"DOCKER_HOST=" + proxy.uri()});
    REQUIRE(wait_for_file(c, "/tmp/started"));
    ::kill(pid, SIGTERM);
    CHECK(wait_exit(pid) == 143);
    CHECK(proxy.rewrites() > 0);  // the engine did report the victim's pid
  }
  int status = 0;
  CHECK(::waitpid(victim, &status, WNOHANG) == 0);  // still running
  ::kill(victim, SIGKILL);
  ::waitpid(victim, &status, 0);
  CHECK(c.client.container_process_count(commit_container(c)) == 2);
}

TEST_CASE("a forged lock note cannot stop another computation's command", "[docker][fault]") {
  // A: a call whose command runs; its lock note names its exec.
  GfsCall a("#!/bin/sh\ntouch /tmp/a-started\nwhile [ ! -e \"$GFSDIR/fast\" ]; do sleep 0.1; done\n"
            "cat \"$1\" > \"$3\"; cat \"$2\" > \"$4\"\n");
  int pid = spawn_ce(a.args());
  REQUIRE(wait_for_file(a.c, "/tmp/a-started"));
  std::string note;
  for (fs::recursive_directory_iterator it(a.gfs.path()), end; it != end; ++it)
    if (it->path().parent_path().filename() == ".locks") note = slurp(it->path().string());
  std::istringstream fields(note);
  std::string word, host, container, exec;
  REQUIRE(fields >> word >> host >> container >> exec);
  std::string a_container = commit_container(a.c);
  REQUIRE(container == a_container);

  // B: another computation with an everytime step, whose setup lock holds
  // notes naming A's exec, as the note was written and as an older ce-run wrote it.
  Computation b("everytime && true\n");
  std::string b_lock = std::string(ce::runner::lock_dir) + "/compdir-" +
                       ce::stages::sha256_hex(fs::canonical(b.path()).string()).substr(0, 24) + ".lock";
  for (const std::string& forged : {note, "exec " + host + " " + exec + "\n"}) {
    fs::create_directories(fs::path(b_lock).parent_path());
    std::ofstream(b_lock, std::ios::trunc) << forged;
    auto r = run_ce({b.path(), "--", "true"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(Catch::Contains("interrupted ce-run").match(r.err));
    CHECK(a.c.client.exec_state(exec).running);
  }
  std::ofstream((a.gfs.path() / "fast").string()) << "\n";
  CHECK(wait_exit(pid) == 0);
}
