// The Engine API client against the real engine (scripts/start-docker).
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <fstream>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/engine_fixture.h"

using namespace ce::docker;
using ce::test::EngineFixture;
using ce::test::TempDir;

TEST_CASE("the engine answers ping and speaks API 1.41 or newer", "[docker]") {
  Client client;
  client.ping();
  auto v = client.check_engine();
  CHECK_FALSE(v.version.empty());
  CHECK_FALSE(v.api_version.empty());
}

TEST_CASE("many requests share keep-alive connections", "[docker]") {
  Client client;
  for (int i = 0; i < 200; ++i) client.ping();
  CHECK(client.find_image("busybox:latest").has_value());
}

TEST_CASE("a socket that does not exist gives the start-docker hint", "[docker]") {
  Client client(EngineAddress::parse("unix:///nonexistent/docker.sock"));
  try {
    client.ping();
    FAIL("ping succeeded");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::unreachable);
    CHECK(std::string(e.what()) ==
          "cannot reach the Docker engine at unix:///nonexistent/docker.sock (No such file or directory); "
          "start it with scripts/start-docker, or check DOCKER_HOST");
  }
}

TEST_CASE("a user who may not use the socket is told to be root or in the docker group", "[docker]") {
  REQUIRE(::geteuid() == 0);  // the suite runs as root, as ce-run does
  // Check in a child that drops to nobody: the socket is root:docker 0660.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string message = "no error";
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
      try {
        Client client;
        client.ping();
      } catch (const EngineError& e) {
        message = std::to_string(static_cast<int>(e.kind())) + ":" + e.what();
      }
    } else {
      message = "could not drop privileges";
    }
    (void)!::write(fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string message;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) message.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(message == std::to_string(static_cast<int>(ErrorKind::permission_denied)) +
                       ":permission denied on the Docker engine socket unix:///var/run/docker.sock: "
                       "ce-run must run as root or as a member of the docker group");
}

TEST_CASE("pulling with no registry reachable names the image and the way out", "[docker]") {
  Client client;
  std::vector<PullProgress> seen;
  try {
    client.pull_image("ce-run-test/no-such-image:1", [&](const PullProgress& p) { seen.push_back(p); });
    FAIL("pull succeeded");
  } catch (const EngineError& e) {
    INFO(e.what());
    CHECK(e.kind() == ErrorKind::registry_unreachable);
    CHECK_THAT(e.what(), Catch::StartsWith("cannot pull image 'ce-run-test/no-such-image:1': no registry is "
                                           "reachable ("));
    CHECK_THAT(e.what(), Catch::Contains("scripts/make-base-images"));
  }
}

TEST_CASE("missing images and containers are told apart", "[docker]") {
  EngineFixture f;
  CHECK_FALSE(f.client.find_image("ce-run-test/absent:never").has_value());
  CHECK_FALSE(f.client.find_container("ce-run-test-absent").has_value());
  try {
    f.client.inspect_container("ce-run-test-absent");
    FAIL("inspect succeeded");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::no_such_container);
    CHECK(e.http_status() == 404);
    CHECK(e.endpoint() == "GET /v1.41/containers/ce-run-test-absent/json");
    CHECK_THAT(e.what(), Catch::StartsWith("No such container: ce-run-test-absent (HTTP 404 from GET"));
  }
  ContainerSpec spec;
  spec.image = "ce-run-test/absent:never";
  try {
    f.create(spec);
    FAIL("create succeeded");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::no_such_image);
  }
}

TEST_CASE("create, start, exec, commit and remove round trip on busybox", "[docker]") {
  EngineFixture f;
  auto id = f.start_busybox();
  auto info = f.client.inspect_container(id);
  CHECK(info.state.running);
  CHECK(info.init);
  CHECK(info.labels == f.labels());

  REQUIRE(f.exec(id, {"sh", "-c", "echo made-in-stage > /marker"}) == 0);
  CHECK(f.client.container_process_count(id) == 2);  // init and sleep
  REQUIRE(f.exec(id, {"sh", "-c", "sleep 600 >/dev/null 2>&1 &"}) == 0);
  CHECK(f.client.container_process_count(id) == 3);  // and what the exec left behind

  CommitSpec commit;
  commit.pause = false;
  commit.container = id;
  commit.repo = "ce-run-test/roundtrip";
  commit.tag = "stage-1";
  commit.labels = f.labels();
  commit.labels["ce-run.stage"] = "1";
  commit.cmd = std::vector<std::string>{"sh", "-c", "cat /marker"};
  commit.env = std::vector<std::string>{"PATH=/bin:/usr/bin", "CE_STAGE=1"};
  commit.working_dir = "/tmp";
  auto image_id = f.client.commit(commit);
  auto image = f.client.inspect_image("ce-run-test/roundtrip:stage-1");
  CHECK(image.id == image_id);
  CHECK(image.labels.at("ce-run.stage") == "1");
  CHECK(image.cmd == std::vector<std::string>{"sh", "-c", "cat /marker"});
  CHECK(image.working_dir == "/tmp");
  CHECK(std::find(image.env.begin(), image.env.end(), "CE_STAGE=1") != image.env.end());

  f.client.tag_image(image_id, "ce-run-test/roundtrip", "again");
  CHECK(f.client.inspect_image("ce-run-test/roundtrip:again").id == image_id);

  // A container from the committed image runs its Cmd and sees the file.
  ContainerSpec spec;
  spec.image = "ce-run-test/roundtrip:stage-1";
  auto child = f.create(spec);
  f.client.start_container(child);
  CHECK(f.client.wait_container(child) == 0);

  ContainerSpec spec2;
  spec2.image = image_id;
  spec2.cmd = {"sleep", "3600"};
  auto second = f.create(spec2);
  f.client.start_container(second);
  f.client.start_container(second);  // already running: no error
  std::string out;
  CHECK(f.exec(second, {"pwd"}, &out) == 0);
  CHECK(out == "/tmp\n");

  f.client.remove_container(second, Force::yes);
  f.client.remove_container(child);
  f.client.remove_container(id, Force::yes);
  CHECK_FALSE(f.client.find_container(id).has_value());
  f.client.remove_image("ce-run-test/roundtrip:again");
  f.client.remove_image("ce-run-test/roundtrip:stage-1");
  CHECK_FALSE(f.client.find_image(image_id).has_value());
}

TEST_CASE("exec reports the command's exit code and keeps stdout and stderr apart", "[docker]") {
  EngineFixture f;
  auto id = f.start_busybox();
  std::string out, err;
  CHECK(f.exec(id, {"sh", "-c", "echo to-out; echo to-err >&2; exit 3"}, &out, &err) == 3);
  CHECK(out == "to-out\n");
  CHECK(err == "to-err\n");
  CHECK(f.exec(id, {"true"}) == 0);
  CHECK(f.exec(id, {"sh", "-c", "kill -9 $$"}) == 137);
  out.clear();
  err.clear();
  int missing = f.exec(id, {"/no/such/program"}, &out, &err);
  CHECK(missing == 126);  // runc cannot exec it: the engine reports 126
  CHECK_THAT(out + err, Catch::Contains("no such file or directory"));

  ExecSpec spec;
  spec.cmd = {"sh", "-c", "echo \"$GREETING from $(pwd) as $(id -u)\""};
  spec.env = {"GREETING=hello"};
  spec.working_dir = "/tmp";
  spec.user = "65534";
  out.clear();
  CHECK(f.client.run_exec(id, spec, [&](StreamKind, std::string_view b) { out.append(b); }) == 0);
  CHECK(out == "hello from /tmp as 65534\n");
}

TEST_CASE("exec output streams live: the first chunk arrives before the command ends", "[docker]") {
  EngineFixture f;
  auto id = f.start_busybox();
  // The command prints, then waits for a file that we create only after its
  // first output has reached us (through a second, concurrent exec). Were the
  // output buffered until the end, it would give up and say "timeout".
  std::string script =
      "echo first; i=0; while [ ! -e /tmp/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; "
      "if [ -e /tmp/go ]; then echo second; else echo timeout; fi";
  std::string out;
  bool released = false;
  int code = f.client.run_exec(id, {{"sh", "-c", script}, {}, {}, {}}, [&](StreamKind, std::string_view b) {
    out.append(b);
    if (!released && out.find("first\n") != std::string::npos) {
      released = true;
      REQUIRE(f.exec(id, {"touch", "/tmp/go"}) == 0);
    }
  });
  CHECK(code == 0);
  CHECK(released);
  CHECK(out == "first\nsecond\n");
}

TEST_CASE("a read-only bind mount is really read-only, a read-write one writable", "[docker]") {
  EngineFixture f;
  TempDir ro, rw;
  { std::ofstream(ro.path() / "input") << "data\n"; }
  auto id = f.start_busybox({{ro.str(), "/ro", Access::read_only}, {rw.str(), "/rw", Access::read_write}});
  std::string out, err;
  CHECK(f.exec(id, {"cat", "/ro/input"}, &out) == 0);
  CHECK(out == "data\n");
  CHECK(f.exec(id, {"touch", "/ro/new"}, nullptr, &err) != 0);
  CHECK_THAT(err, Catch::Contains("Read-only file system"));
  CHECK(f.exec(id, {"sh", "-c", "echo x >> /ro/input"}) != 0);
  CHECK_FALSE(boost::filesystem::exists(ro.path() / "new"));
  CHECK(f.exec(id, {"sh", "-c", "echo written > /rw/out"}) == 0);
  std::ifstream written((rw.path() / "out").string());
  std::string line;
  std::getline(written, line);
  CHECK(line == "written");

  auto info = f.client.inspect_container(id);
  REQUIRE(info.binds.size() == 2);
}

TEST_CASE("containers and images are listed by label", "[docker]") {
  EngineFixture f;
  ContainerSpec spec;
  spec.image = "busybox:latest";
  spec.cmd = {"true"};
  spec.labels = {{"ce-run.role", "a"}};
  auto a = f.create(spec);
  spec.labels = {{"ce-run.role", "b"}};
  auto b = f.create(spec);

  auto mine = f.client.list_containers(f.labels());
  CHECK(mine.size() == 2);
  auto labels = f.labels();
  labels["ce-run.role"] = "b";
  auto only_b = f.client.list_containers(labels);
  REQUIRE(only_b.size() == 1);
  CHECK(only_b[0].id == b);
  CHECK(only_b[0].labels.at("ce-run.role") == "b");
  CHECK(f.client.list_containers(f.labels(), Which::running).empty());

  CommitSpec commit;
  commit.container = a;
  commit.labels = f.labels();
  auto image = f.client.commit(commit);
  auto images = f.client.list_images(f.labels());
  REQUIRE(images.size() == 1);
  CHECK(images[0].id == image);
}

TEST_CASE("stop, kill and wait report how a container ended", "[docker]") {
  EngineFixture f;
  auto id = f.start_busybox();
  f.client.kill_container(id, "SIGKILL");
  CHECK(f.client.wait_container(id) == 137);
  CHECK_FALSE(f.client.inspect_container(id).state.running);
  f.client.stop_container(id, 1);  // already stopped: no error
  try {
    f.client.kill_container(id);
    FAIL("kill of a stopped container succeeded");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::conflict);
  }

  auto second = f.start_busybox();
  f.client.stop_container(second, 5);  // init forwards SIGTERM to sleep
  auto info = f.client.inspect_container(second);
  CHECK(info.state.status == "exited");
}

TEST_CASE("debian:bookworm from make-base-images can apt-get install a package", "[docker]") {
  EngineFixture f;
  ContainerSpec spec;
  spec.image = "debian:bookworm";
  spec.cmd = {"sleep", "infinity"};
  spec.init = true;
  auto id = f.create(spec);
  f.client.start_container(id);
  std::string out, err;
  int code = f.exec(id, {"bash", "-c", "apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello"},
                    &out, &err);
  INFO(err);
  CHECK(code == 0);
  CHECK(out == "Hello, world!\n");
}
