#include <catch2/catch.hpp>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include "docker/errors.h"
#include "docker/json_mapping.h"

using namespace ce::docker;
using Poco::JSON::Object;

namespace {
Object::Ptr parse(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Object::Ptr>();
}
}  // namespace

TEST_CASE("a container spec maps onto the create body of API 1.41", "[json]") {
  ContainerSpec spec;
  spec.image = "busybox:latest";
  spec.cmd = {"sleep", "infinity"};
  spec.env = {"GFSDIR=/gfs", "COMPDIR=/comp"};
  spec.working_dir = "/work";
  spec.user = "1000:1000";
  spec.labels = {{"ce-run.computation", "hello"}, {"ce-run.commit", "abc"}};
  spec.binds = {{"/srv/gfs", "/gfs", Access::read_write}, {"/home/me/comp:x", "/comp", Access::read_only}};
  spec.network_mode = "none";
  spec.nano_cpus = 1500000000;
  spec.memory_bytes = 256 << 20;
  spec.pids_limit = 100;
  spec.init = true;

  auto body = parse(json::container_create_body(spec));
  CHECK(body->getValue<std::string>("Image") == "busybox:latest");
  CHECK(body->getArray("Cmd")->getElement<std::string>(1) == "infinity");
  CHECK(body->getArray("Env")->size() == 2);
  CHECK(body->getValue<std::string>("WorkingDir") == "/work");
  CHECK(body->getValue<std::string>("User") == "1000:1000");
  CHECK(body->getObject("Labels")->getValue<std::string>("ce-run.commit") == "abc");
  CHECK_FALSE(body->getValue<bool>("Tty"));
  auto host = body->getObject("HostConfig");
  CHECK(host->getValue<std::string>("NetworkMode") == "none");
  CHECK(host->getValue<std::int64_t>("NanoCpus") == 1500000000);
  CHECK(host->getValue<std::int64_t>("Memory") == (256 << 20));
  CHECK(host->getValue<std::int64_t>("PidsLimit") == 100);
  CHECK(host->getValue<bool>("Init"));
  auto mounts = host->getArray("Mounts");
  REQUIRE(mounts->size() == 2);
  auto ro = mounts->getObject(1);
  CHECK(ro->getValue<std::string>("Type") == "bind");
  CHECK(ro->getValue<std::string>("Source") == "/home/me/comp:x");  // a ':' survives
  CHECK(ro->getValue<std::string>("Target") == "/comp");
  CHECK(ro->getValue<bool>("ReadOnly"));
  CHECK_FALSE(mounts->getObject(0)->getValue<bool>("ReadOnly"));
}

TEST_CASE("unset limits are left out of the create body", "[json]") {
  ContainerSpec spec;
  spec.image = "busybox:latest";
  auto body = parse(json::container_create_body(spec));
  CHECK_FALSE(body->has("Cmd"));
  CHECK_FALSE(body->has("User"));
  auto host = body->getObject("HostConfig");
  CHECK_FALSE(host->has("NanoCpus"));
  CHECK_FALSE(host->has("Memory"));
  CHECK_FALSE(host->has("PidsLimit"));
  CHECK_FALSE(host->has("NetworkMode"));
}

TEST_CASE("exec and commit bodies carry what was asked", "[json]") {
  auto exec = parse(json::exec_create_body({{"sh", "-c", "echo \"hi\""}, {"A=1"}, "/tmp", "nobody"}));
  CHECK(exec->getArray("Cmd")->getElement<std::string>(2) == "echo \"hi\"");
  CHECK(exec->getValue<bool>("AttachStdout"));
  CHECK(exec->getValue<bool>("AttachStderr"));
  CHECK_FALSE(exec->getValue<bool>("Tty"));
  CHECK(exec->getValue<std::string>("User") == "nobody");

  CommitSpec commit;
  commit.labels = {{"ce-run.stage", "2"}};
  commit.cmd = std::vector<std::string>{"bash"};
  commit.working_dir = "/";
  auto body = parse(json::commit_body(commit));
  CHECK(body->getObject("Labels")->getValue<std::string>("ce-run.stage") == "2");
  CHECK(body->getArray("Cmd")->getElement<std::string>(0) == "bash");
  CHECK(body->getValue<std::string>("WorkingDir") == "/");
  CHECK_FALSE(body->has("Env"));  // unset: the container's env is kept
}

TEST_CASE("label filters list key=value pairs", "[json]") {
  auto filter = parse(json::label_filter({{"a", "1"}, {"b", ""}}));
  auto values = filter->getArray("label");
  REQUIRE(values->size() == 2);
  CHECK(values->getElement<std::string>(0) == "a=1");
  CHECK(values->getElement<std::string>(1) == "b");
}

TEST_CASE("a container description is read, missing and null members tolerated", "[json]") {
  auto info = json::parse_container_info(R"({
    "Id": "4fa6e0f0c678", "Name": "/ce-hello", "Image": "sha256:3f89", "Created": "2026-11-23T10:00:00Z",
    "HostsPath": "/var/lib/docker/containers/4fa6/hosts", "ResolvConfPath": "/r", "HostnamePath": "/h",
    "State": {"Status": "exited", "Running": false, "ExitCode": 3, "Pid": 0},
    "Config": {"Labels": {"ce-run.commit": "abc"}, "Env": ["A=1"], "WorkingDir": "", "User": null},
    "HostConfig": {"NetworkMode": "none", "Memory": 1048576, "Init": true, "NanoCpus": null},
    "Mounts": [{"Type": "bind", "Source": "/srv/gfs", "Destination": "/gfs", "RW": true},
               {"Type": "bind", "Source": "/c", "Destination": "/c", "RW": false},
               {"Type": "volume", "Name": "x", "Destination": "/v", "RW": true}],
    "SomethingNewer": {"x": 1}})");
  CHECK(info.id == "4fa6e0f0c678");
  CHECK(info.name == "ce-hello");
  CHECK(info.hosts_path == "/var/lib/docker/containers/4fa6/hosts");
  CHECK(info.resolv_conf_path == "/r");
  CHECK(info.hostname_path == "/h");
  CHECK(info.state.status == "exited");
  CHECK(info.state.exit_code == 3);
  CHECK_FALSE(info.state.running);
  CHECK(info.labels.at("ce-run.commit") == "abc");
  CHECK(info.user.empty());
  CHECK(info.network_mode == "none");
  CHECK(info.memory_bytes == 1048576);
  CHECK(info.nano_cpus == 0);
  CHECK(info.init);
  REQUIRE(info.binds.size() == 2);
  CHECK(info.binds[1].access == Access::read_only);
  CHECK(info.binds[0].access == Access::read_write);
}

TEST_CASE("image and container lists are read", "[json]") {
  auto images = json::parse_image_list(
      R"([{"Id":"sha256:aa","RepoTags":["ce/x:stage-1"],"Created":1700000000,"Size":42,"Labels":{"k":"v"}},
          {"Id":"sha256:bb","RepoTags":null,"Labels":null}])");
  REQUIRE(images.size() == 2);
  CHECK(images[0].repo_tags.at(0) == "ce/x:stage-1");
  CHECK(images[0].labels.at("k") == "v");
  CHECK(images[1].repo_tags.empty());
  auto containers = json::parse_container_list(
      R"([{"Id":"cc","Names":["/one"],"Image":"busybox","ImageID":"sha256:aa","State":"running",
           "Status":"Up 2 seconds","Created":1700000001,"Labels":{"ce-run.test":"1"}}])");
  REQUIRE(containers.size() == 1);
  CHECK(containers[0].names.at(0) == "one");
  CHECK(containers[0].state == "running");
  CHECK(containers[0].created == 1700000001);
}

TEST_CASE("exec state, version, ids and wait answers are read", "[json]") {
  auto exec = json::parse_exec_state(R"({"Running":false,"ExitCode":7,"Pid":1234,"ContainerID":"c0ffee"})");
  CHECK(exec.exit_code == 7);
  CHECK(exec.container_id == "c0ffee");
  CHECK(exec.pid == 1234);
  auto v = json::parse_version(R"({"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"})");
  CHECK(v.api_version == "1.41");
  CHECK(json::parse_id(R"({"Id":"abc","Warnings":[]})") == "abc");
  CHECK(json::parse_process_count(R"({"Titles":["PID","CMD"],"Processes":[["1","init"],["7","sleep"]]})") == 2);
  CHECK(json::parse_process_count(R"({"Titles":[],"Processes":null})") == 0);
  CHECK(json::parse_wait_status(R"({"StatusCode":137,"Error":null})") == 137);
  REQUIRE_THROWS_WITH(json::parse_wait_status(R"({"StatusCode":0,"Error":{"Message":"boom"}})"),
                      "waiting for the container failed: boom");
}

TEST_CASE("error bodies give the daemon's message", "[json]") {
  CHECK(json::parse_error_message(R"({"message":"No such image: x:latest"})") == "No such image: x:latest");
  CHECK(json::parse_error_message("page not found\n") == "page not found");
}

TEST_CASE("pull progress lines are read and errors reported", "[json]") {
  PullProgress p;
  std::string error;
  REQUIRE(json::parse_pull_line(R"({"status":"Downloading","progress":"[==>  ]","id":"a1"})", p, error));
  CHECK(p.status == "Downloading");
  CHECK(p.id == "a1");
  CHECK_FALSE(json::parse_pull_line(R"({"errorDetail":{"message":"x"},"error":"manifest unknown"})", p, error));
  CHECK(error == "manifest unknown");
}

TEST_CASE("text that is not JSON is a protocol error", "[json]") {
  REQUIRE_THROWS_WITH(json::parse_id("<html>"),
                      Catch::StartsWith("the engine's answer is not valid JSON"));
  try {
    json::parse_container_list("{}");
    FAIL("no exception");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::protocol);
  }
}

TEST_CASE("a job spec maps onto a service of one replica that Swarm never restarts", "[json][swarm-json]") {
  JobSpec spec;
  spec.name = "ce-run-call-1";
  spec.labels = {{"ce-run.call", "1"}};
  spec.image = "10.0.0.1:5000/ce-run/x@sha256:abc";
  spec.command = {"/sup", "--serve"};
  spec.env = {"A=b"};
  spec.user = "0:0";
  spec.working_dir = "/w";
  spec.binds = {{"/gfs", "/gfs", Access::read_only}};
  spec.network = "host";
  spec.nano_cpus = 2000000000;
  spec.memory_bytes = 1 << 30;
  spec.pids_limit = 100;
  spec.reserve_nano_cpus = 1000000000;
  spec.reserve_memory_bytes = 1 << 30;
  spec.constraints = {"node.id!=n1"};
  spec.capabilities_add = {"CAP_SYS_ADMIN"};
  spec.masked = {"/gfs/.ce-run"};
  spec.init = true;
  auto body = parse(json::job_create_body(spec));
  CHECK(body->getValue<std::string>("Name") == "ce-run-call-1");
  CHECK(body->getObject("Mode")->getObject("Replicated")->getValue<int>("Replicas") == 1);
  auto task = body->getObject("TaskTemplate");
  CHECK(task->getObject("RestartPolicy")->getValue<std::string>("Condition") == "none");
  auto c = task->getObject("ContainerSpec");
  CHECK(c->getValue<std::string>("Image") == spec.image);
  CHECK(c->getArray("Command")->size() == 2);
  CHECK(c->getValue<std::string>("User") == "0:0");
  CHECK(c->getValue<std::string>("Dir") == "/w");
  CHECK(c->getValue<bool>("Init"));
  CHECK(c->getArray("CapabilityAdd")->getElement<std::string>(0) == "CAP_SYS_ADMIN");
  CHECK(c->getObject("Labels")->getValue<std::string>("ce-run.call") == "1");
  auto mount = c->getArray("Mounts")->getObject(0);
  CHECK(mount->getValue<std::string>("Type") == "bind");
  CHECK(mount->getValue<bool>("ReadOnly"));
  auto mask = c->getArray("Mounts")->getObject(1);
  CHECK(mask->getValue<std::string>("Type") == "tmpfs");
  CHECK(mask->getValue<std::string>("Target") == "/gfs/.ce-run");
  CHECK(mask->getValue<bool>("ReadOnly"));
  auto limits = task->getObject("Resources")->getObject("Limits");
  CHECK(limits->getValue<std::int64_t>("NanoCPUs") == 2000000000);
  CHECK(limits->getValue<std::int64_t>("MemoryBytes") == 1 << 30);
  CHECK(limits->getValue<std::int64_t>("Pids") == 100);
  auto reservations = task->getObject("Resources")->getObject("Reservations");
  CHECK(reservations->getValue<std::int64_t>("MemoryBytes") == 1 << 30);
  CHECK(task->getObject("Placement")->getArray("Constraints")->getElement<std::string>(0) == "node.id!=n1");
  CHECK(task->getArray("Networks")->getObject(0)->getValue<std::string>("Target") == "host");
}

TEST_CASE("tasks, nodes and a push's digest are read from the engine's answers", "[json][swarm-json]") {
  auto tasks = json::parse_task_list(R"j([
    {"ID":"t1","ServiceID":"s","NodeID":"n1","DesiredState":"complete",
     "Status":{"State":"failed","Err":"task: non-zero exit (3)","Timestamp":"2026-12-02T07:00:00Z",
               "ContainerStatus":{"ContainerID":"c1","ExitCode":3}}},
    {"ID":"t2","ServiceID":"s","DesiredState":"complete",
     "Status":{"State":"pending","Err":"no suitable node (insufficient resources on 3 nodes)"}},
    {"ID":"t3","ServiceID":"s","NodeID":"n2","Status":{"State":"running","ContainerStatus":{"ExitCode":0}}}])j");
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[0].exit_code == 3);
  CHECK(tasks[0].container_id == "c1");
  CHECK(tasks[0].node_id == "n1");
  CHECK_FALSE(tasks[1].exit_code);
  CHECK(tasks[1].error == "no suitable node (insufficient resources on 3 nodes)");
  CHECK_FALSE(tasks[2].exit_code);  // running: its 0 is no exit code yet

  auto nodes = json::parse_node_list(R"([{"ID":"n1","Spec":{"Role":"manager","Availability":"active",
    "Labels":{"site":"a"}},"Description":{"Hostname":"h1","Resources":{"NanoCPUs":2000000000,
    "MemoryBytes":1024},"Engine":{"EngineVersion":"20.10.24"}},"Status":{"State":"down","Addr":"10.0.0.1",
    "Message":"heartbeat failure"},"ManagerStatus":{"Leader":true}}])");
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].hostname == "h1");
  CHECK(nodes[0].state == "down");
  CHECK(nodes[0].leader);
  CHECK(nodes[0].labels.at("site") == "a");
  CHECK(nodes[0].nano_cpus == 2000000000);

  CHECK(json::parse_push_digest(R"({"progressDetail":{},"aux":{"Tag":"t","Digest":"sha256:ab","Size":5}})") ==
        "sha256:ab");
  CHECK(json::parse_push_digest(R"({"status":"Pushed"})").empty());
  CHECK(json::parse_distribution_digest(R"({"Descriptor":{"digest":"sha256:cd"}})") == "sha256:cd");
  CHECK(json::parse_service_id(R"({"ID":"s1","Warnings":null})") == "s1");

}
