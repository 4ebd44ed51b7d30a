// The Swarm part of docker::Client (docs/fleet.md) against the real 3-node
// Swarm of scripts/start-swarm (ctest starts it for [swarm] cases, and
// stops it after them): nodes, an image pushed to the fleet's registry and
// pulled by a worker, a job's exit code and node, a job that fits no node,
// and a job removed, running or ended, with nothing left on its node.
#include <catch2/catch.hpp>

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <algorithm>
#include <iterator>
#include <sstream>
#include <chrono>
#include <cstdio>
#include <functional>
#include <set>
#include <thread>
#include <unistd.h>

#include "docker/client.h"
#include "docker/errors.h"
#include "runner/fleet.h"
#include "support/ce_run.h"
#include "support/engine_fixture.h"

using namespace ce::docker;

namespace {

using ce::test::swarm_setting;

// Polls `done` every 100 ms for up to `seconds`; whether it came true.
bool within(double seconds, const std::function<bool()>& done) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// The swarm's jobs this case made are ended whatever happens.
struct Jobs {
  Client& client;
  std::vector<std::string> ids;
  ~Jobs() {
    for (const auto& id : ids) {
      try {
        client.remove_service(id);
      } catch (const std::exception&) {
      }
    }
  }
};

// busybox:latest pushed as REGISTRY/ce-test/busybox:PID; its digest.
std::string pushed_busybox(Client& client, const std::string& registry, std::string& repo) {
  repo = registry + "/ce-test/busybox";
  std::string tag = std::to_string(::getpid());
  client.tag_image("busybox:latest", repo, tag);
  std::string digest = client.push_image(repo, tag);
  client.remove_image(repo + ":" + tag);
  return digest;
}

// A job of busybox pushed to the fleet's registry (pinned by digest),
// labelled for the test as `name`-PID.
JobSpec busybox_job(Client& client, const std::string& name, std::vector<std::string> command) {
  std::string repo;
  std::string digest = pushed_busybox(client, swarm_setting("CE_SWARM_REGISTRY"), repo);
  JobSpec spec;
  spec.name = name + "-" + std::to_string(::getpid());
  spec.labels = {{"ce-run.test", spec.name}};
  spec.image = repo + "@" + digest;
  spec.command = std::move(command);
  return spec;
}

}  // namespace

TEST_CASE("the swarm's nodes: three ready, a manager that leads, and what each has", "[docker][swarm]") {
  Client client;
  CHECK(client.swarm_state().local_node_state == "active");
  CHECK(client.swarm_state().control_available);
  auto nodes = client.list_nodes();
  REQUIRE(nodes.size() == 3);
  std::set<std::string> hostnames;
  for (const auto& n : nodes) {
    INFO(n.hostname);
    CHECK(n.state == "ready");
    CHECK(n.availability == "active");
    CHECK(n.nano_cpus >= 1000000000);
    CHECK(n.memory_bytes > 0);
    CHECK(!n.address.empty());
    hostnames.insert(n.hostname);
  }
  CHECK(hostnames.count("ce-swarm-w1") == 1);
  CHECK(hostnames.count("ce-swarm-w2") == 1);
  CHECK(std::count_if(nodes.begin(), nodes.end(), [](const NodeInfo& n) { return n.leader; }) == 1);
}

TEST_CASE("a job runs on a worker from an image pulled by digest from the fleet's registry, and reports its exit code",
          "[docker][swarm]") {
  Client client;
  std::string registry = swarm_setting("CE_SWARM_REGISTRY"), repo;
  std::string digest = pushed_busybox(client, registry, repo);
  CHECK(digest.rfind("sha256:", 0) == 0);
  CHECK(client.registry_digest(repo + ":" + std::to_string(::getpid())) == digest);
  CHECK_FALSE(client.registry_digest(repo + ":no-such-tag"));

  Jobs jobs{client, {}};
  JobSpec spec;
  spec.name = "ce-test-exit-" + std::to_string(::getpid());
  spec.labels = {{"ce-run.test", spec.name}};
  spec.image = repo + "@" + digest;
  spec.command = {"sh", "-c", "hostname; exit 3"};
  spec.constraints = {"node.role==worker"};
  spec.memory_bytes = 64 << 20;
  spec.pids_limit = 64;
  spec.init = true;
  jobs.ids.push_back(client.create_job(spec));
  auto services = client.list_services({{"ce-run.test", spec.name}});
  REQUIRE(services.size() == 1);
  CHECK(services[0].id == jobs.ids[0]);

  std::vector<TaskInfo> tasks;
  REQUIRE(within(60, [&] {
    tasks = client.list_tasks(jobs.ids[0]);
    return tasks.size() == 1 && tasks[0].exit_code.has_value();
  }));
  CHECK(tasks[0].state == "failed");
  CHECK(*tasks[0].exit_code == 3);
  CHECK_THAT(tasks[0].error, Catch::Contains("non-zero exit (3)"));
  std::string worker;
  for (const auto& n : client.list_nodes())
    if (n.id == tasks[0].node_id) worker = n.hostname;
  REQUIRE((worker == "ce-swarm-w1" || worker == "ce-swarm-w2"));
  // Removed once ended: its container goes from its node too.
  Client node(EngineAddress::parse(swarm_setting("CE_SWARM_WORKER_" + worker.substr(9))));
  auto on_node = [&] { return node.list_containers({{"ce-run.test", spec.name}}, Which::all).size(); };
  CHECK(on_node() == 1);
  client.remove_service(jobs.ids[0]);
  CHECK(within(20, [&] { return on_node() == 0; }));
}

TEST_CASE("a job that fits no node stays pending, and says why within seconds", "[docker][swarm]") {
  Client client;
  Jobs jobs{client, {}};
  JobSpec spec = busybox_job(client, "ce-test-huge", {"true"});
  spec.reserve_memory_bytes = std::int64_t{1} << 50;  // 1 PiB
  jobs.ids.push_back(client.create_job(spec));
  std::vector<TaskInfo> tasks;
  REQUIRE(within(20, [&] {
    tasks = client.list_tasks(jobs.ids[0]);
    return tasks.size() == 1 && !tasks[0].error.empty();
  }));
  CHECK(tasks[0].state == "pending");
  CHECK(tasks[0].node_id.empty());
  CHECK_THAT(tasks[0].error, Catch::StartsWith("no suitable node (insufficient resources on 3 nodes"));
}

TEST_CASE("a running job removed leaves no service and no container on its node", "[docker][swarm]") {
  Client client;
  Jobs jobs{client, {}};
  JobSpec spec = busybox_job(client, "ce-test-end", {"sleep", "300"});
  spec.constraints = {"node.role==worker"};
  spec.init = true;  // SIGTERM ends sleep at once
  std::string id = client.create_job(spec);
  jobs.ids.push_back(id);
  std::vector<TaskInfo> tasks;
  REQUIRE(within(60, [&] {
    tasks = client.list_tasks(id);
    return tasks.size() == 1 && tasks[0].state == "running";
  }));
  std::string hostname;
  for (const auto& n : client.list_nodes())
    if (n.id == tasks[0].node_id) hostname = n.hostname;
  REQUIRE(hostname.rfind("ce-swarm-", 0) == 0);
  // The node's own engine: the task's container is there, then gone.
  Client node(EngineAddress::parse(swarm_setting("CE_SWARM_WORKER_" + hostname.substr(9))));
  auto on_node = [&] { return node.list_containers({{"ce-run.test", spec.name}}, Which::all).size(); };
  CHECK(on_node() == 1);
  client.remove_service(id);
  CHECK(client.list_services({{"ce-run.test", spec.name}}).empty());
  CHECK(within(20, [&] { return on_node() == 0; }));
  client.remove_service(id);  // gone already: no error
}

TEST_CASE("ce-run fleet status shows the nodes, ce-run's calls on each and those waiting for a node",
          "[docker][swarm]") {
  Client client;
  std::string registry = swarm_setting("CE_SWARM_REGISTRY"), repo;
  std::string digest = pushed_busybox(client, registry, repo);
  Jobs jobs{client, {}};
  namespace fl = ce::runner::fleet_label;
  std::string tag = std::to_string(::getpid());
  JobSpec running;
  running.name = "ce-test-status-run-" + tag;
  running.labels = {{"ce-run.test", running.name}, {fl::job, "call"}, {fl::call, "c_demo/0123456789ab/run" + tag},
                    {fl::computation, "demo"}, {fl::attempt, "2"}};
  running.image = repo + "@" + digest;
  running.command = {"sleep", "300"};
  running.constraints = {"node.role==worker"};
  running.init = true;
  jobs.ids.push_back(client.create_job(running));
  JobSpec waiting = running;
  waiting.name = "ce-test-status-wait-" + tag;
  waiting.labels[fl::call] = "c_demo/0123456789ab/wait" + tag;
  waiting.labels["ce-run.test"] = waiting.name;
  waiting.reserve_memory_bytes = std::int64_t{1} << 50;
  jobs.ids.push_back(client.create_job(waiting));
  REQUIRE(within(60, [&] {
    auto status = ce::runner::fleet_status(client);
    return status.pending == 1 && std::any_of(status.jobs.begin(), status.jobs.end(), [](const auto& j) {
             return j.state == "running";
           });
  }));

  auto r = ce::test::run_ce({"fleet", "status"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("swarm: 3 nodes, 3 ready; 1 ce-run call running, 1 waiting for a node\n"));
  CHECK_THAT(r.out, Catch::Contains(" manager  ready    active"));
  CHECK_THAT(r.out, Catch::Contains("\nce-swarm-w1              worker   ready    active"));
  CHECK_THAT(r.out, Catch::Contains("    c_demo/0123456789ab/run" + tag + "  running for "));
  CHECK_THAT(r.out, Catch::Contains("attempt 2)"));
  CHECK_THAT(r.out, Catch::Contains("waiting for a node:\n    c_demo/0123456789ab/wait" + tag +
                                    "  no suitable node (insufficient resources on 3 nodes"));

  // A worker's engine knows no fleet: ce-run says where to ask.
  auto worker = ce::test::run_ce_env({"DOCKER_HOST=" + swarm_setting("CE_SWARM_WORKER_w1")}, {"fleet", "status"});
  CHECK(worker.exit_code == 125);
  CHECK_THAT(worker.err, Catch::Contains("is a Swarm worker: only a manager knows the fleet"));
}

TEST_CASE("registry credentials from a Docker client's config.json, as X-Registry-Auth", "[swarm-json]") {
  using ce::runner::registry_auth_from_config;
  auto decoded = [](const std::string& value) {
    std::istringstream in(value);
    Poco::Base64Decoder decoder(in, Poco::BASE64_URL_ENCODING);
    return std::string(std::istreambuf_iterator<char>(decoder), {});
  };
  const std::string reg = "10.0.0.1:5000";
  // base64("alice:pa:ss"): the password may hold ':'.
  std::string login = R"({"auths": {"https://10.0.0.1:5000/v1/": {"auth": "YWxpY2U6cGE6c3M="}}})";
  CHECK(decoded(registry_auth_from_config(login, reg, "c.json")) ==
        R"({"username":"alice","password":"pa:ss","serveraddress":"10.0.0.1:5000"})");
  CHECK(decoded(registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": {"username": "bob", "password": "x"}}})", reg,
                                          "c.json")) == R"({"username":"bob","password":"x","serveraddress":"10.0.0.1:5000"})");
  CHECK(decoded(registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": {"identitytoken": "tok"}}})", reg, "c.json")) ==
        R"({"identitytoken":"tok","serveraddress":"10.0.0.1:5000"})");
  // URL-safe: no '+' or '/' in a header value.
  std::string odd = registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": {"username": "??>>", "password": "~~~"}}})",
                                              reg, "c.json");
  CHECK(odd.find_first_of("+/\n") == std::string::npos);
  // Another registry's, none, a helper's: anonymous.
  CHECK(registry_auth_from_config(login, "10.0.0.1:5001", "c.json").empty());
  CHECK(registry_auth_from_config(R"({"auths": {"10.0.0.1:50000": {"auth": "YWxpY2U6eA=="}}})", reg, "c.json").empty());
  CHECK(registry_auth_from_config(R"({"credsStore": "desktop"})", reg, "c.json").empty());
  CHECK(registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": {}}})", reg, "c.json").empty());
  // Not such a file: said, with the file's name.
  CHECK_THROWS_WITH(registry_auth_from_config("{\"auths\": ", reg, "/home/u/.docker/config.json"),
                    Catch::StartsWith("/home/u/.docker/config.json: not JSON"));
  CHECK_THROWS_WITH(registry_auth_from_config("[]", reg, "c.json"), Catch::StartsWith("c.json: not a JSON object"));
  CHECK_THROWS_WITH(registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": {"auth": "bm9jb2xvbg=="}}})", reg, "c.json"),
                    Catch::Contains("is not base64 of USER:PASSWORD"));
  CHECK_THROWS_WITH(registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": {"auth": 7}}})", reg, "c.json"),
                    Catch::Contains(".auth is not a string"));
  CHECK_THROWS_WITH(registry_auth_from_config(R"({"auths": {"10.0.0.1:5000": "x"}})", reg, "c.json"),
                    Catch::Contains("is not an object"));
}
