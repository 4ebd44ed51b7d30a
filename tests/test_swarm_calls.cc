// ce-run --swarm on the real 3-node Swarm of scripts/start-swarm (ctest's
// "swarm" fixture): a call computed as a job and filed under the names a
// local run gives, then answered from the GFS; the command's exit code; a
// call no node can take; the timeout; Ctrl-C. After each, no service of
// ce-run's is left, and no container of it on any node.
#include <catch2/catch.hpp>

#include <Poco/Base64Encoder.h>
#include <boost/filesystem.hpp>
#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "docker/client.h"
#include "runner/fleet.h"
#include "stages/stage_engine.h"
#include "support/ce_run.h"
#include "support/computation.h"
#include "support/engine_fixture.h"
#include "support/task.h"

using namespace ce::test;
namespace fs = boost::filesystem;

namespace {

// A host.conf of the test's own (root's, as host.conf must be), named by
// CE_RUN_HOST_CONF: the fleet's registry of `scripts/start-swarm env`.
struct FleetHost {
  TempDir dir;
  std::string conf = (dir.path() / "host.conf").string();
  std::string env = "CE_RUN_HOST_CONF=" + conf;
  explicit FleetHost(const std::string& extra = {}, const std::string& registry = swarm_setting("CE_SWARM_REGISTRY")) {
    std::ofstream(conf) << "registry = \"" << registry << "\"\n" << extra;
  }
};

// The engines of the manager and both workers.
std::vector<std::string> node_hosts() {
  std::vector<std::string> hosts{"unix:///var/run/docker.sock"};
  for (const char* w : {"w1", "w2"}) hosts.push_back(std::string("unix:///run/ce-swarm/") + w + "/docker.sock");
  return hosts;
}

// ce-run's jobs in the swarm, and the containers of `computation` on every node.
std::size_t services_left(ce::docker::Client& client) {
  return client.list_services({{ce::runner::fleet_label::job, ""}}).size();
}
std::size_t containers_left(const std::string& computation) {
  std::size_t n = 0;
  for (const auto& host : node_hosts()) {
    ce::docker::Client node(ce::docker::EngineAddress::parse(host));
    n += node.list_containers({{ce::runner::fleet_label::computation, computation}, {ce::runner::fleet_label::job, "call"}},
                              ce::docker::Which::all)
             .size();
  }
  return n;
}

const char* const upper_exec =
    "#!/bin/sh\n"
    "echo \"ran on $(hostname) as $(id -u):$(id -g)\"\n"
    "cat /stage-file /tmp/every\n"
    "tr a-z A-Z < \"$1\" > \"$2\"\n";

std::map<std::string, std::string> compeval(std::map<std::string, std::string> extra = {}) {
  extra["inputs"] = "text\n";
  extra["outputs"] = "upper\n";
  return extra;
}

// The paths of ce-run's "PATH STATUS" lines below `gfs` (the command's own
// output comes first).
std::vector<std::string> filed(const std::string& out, const TempDir& gfs) {
  std::vector<std::string> paths;
  for (const auto& p : GfsCall::paths(out))
    if (p.rfind(gfs.str() + "/", 0) == 0) paths.push_back(p);
  return paths;
}

// `computation`'s fleet call on a new input file `name` (in `data`) holding
// `text`, with its report in `report` (the input's path + ".json").
struct ReportedRun {
  RunResult r;
  std::string report;
};
ReportedRun fleet_call_on(const FleetHost& host, const TempDir& gfs, const Computation& computation,
                          const TempDir& data, const std::string& name, const std::string& text) {
  std::string in = (data.path() / name).string();
  std::ofstream(in) << text;
  std::string report = in + ".json";
  return {run_ce_env({host.env}, {"--swarm", "--gfs", gfs.str(), "--report", report, computation.path(), in}), report};
}

// The records filed below a computation's results (its done/ files).
std::size_t records_in(const fs::path& computation_results) {
  std::size_t records = 0;
  for (const auto& e : fs::recursive_directory_iterator(computation_results))
    if (e.path().parent_path().filename() == "done") ++records;
  return records;
}

// The task of a running job of `computation`'s: its service and node, or
// nullopt while there is none.
struct Running {
  std::string service, node;
};
std::optional<Running> running_job(ce::docker::Client& client, const std::string& computation) {
  for (const auto& s : client.list_services({{ce::runner::fleet_label::computation, computation}}))
    for (const auto& t : client.list_tasks(s.id))
      if (t.state == "running") return Running{s.id, t.node_id};
  return std::nullopt;
}
Running wait_running(ce::docker::Client& client, const std::string& computation) {
  std::optional<Running> found;
  REQUIRE(poll_until([&] { return (found = running_job(client, computation)).has_value(); }, 120));
  return *found;
}

// The manager takes no jobs while this lives (its engine is the one the
// test keeps): only the workers do.
struct ManagerDrained {
  std::string id = ce::docker::Client().swarm_state().node_id;
  ManagerDrained() { REQUIRE(std::system(("docker node update --availability drain " + id + " >/dev/null").c_str()) == 0); }
  ~ManagerDrained() { std::system(("docker node update --availability active " + id + " >/dev/null").c_str()); }
};

// One computation's fleet call on one input, with its own GFS.
struct FleetCall {
  FleetHost host;
  Computation c;
  TempDir gfs, data;
  std::string in = (data.path() / "in.txt").string();
  FleetCall(const std::string& setup, const std::string& exec, const std::string& input)
      : c(setup, exec, compeval()) {
    std::ofstream(in) << input;
  }
  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--swarm", "--gfs", gfs.str()};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back(c.path());
    a.push_back(in);
    return a;
  }
  RunResult run(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) const {
    env.push_back(host.env);
    return run_ce_env(env, args(std::move(extra)));
  }
};

}  // namespace

TEST_CASE("a fleet call is computed as a job on a node, files it as a local run would, then answers from the GFS",
          "[docker][swarm]") {
  FleetHost host;
  Computation c("next_stage && echo built > /stage-file\neverytime && echo every > /tmp/every\n", upper_exec,
                compeval());
  TempDir gfs, local_gfs, data;
  auto [r, report] = fleet_call_on(host, gfs, c, data, "in.txt", "hello fleet\n");
  std::string in = (data.path() / "in.txt").string();
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("built\nevery\n"));  // the stage, then the everytime step in the job
  CHECK_THAT(r.out, Catch::Contains("ran on "));
  CHECK_THAT(r.err, Catch::Contains("submitted as job "));
  auto paths = filed(r.out, gfs);
  REQUIRE(paths.size() == 1);
  CHECK(slurp(paths[0]) == "HELLO FLEET\n");
  std::string json = slurp(report);
  CHECK_THAT(json, Catch::Contains("\"fleet\": {"));
  CHECK_THAT(json, Catch::Contains("\"attempts\": 1"));
  CHECK_THAT(json, Catch::Contains("/ce-run/stages@sha256:"));

  // The same names and bytes as a run on this engine.
  auto local = run_ce({"--gfs", local_gfs.str(), c.path(), in});
  INFO(local.out << local.err);
  REQUIRE(local.exit_code == 0);
  auto local_paths = filed(local.out, local_gfs);
  REQUIRE(local_paths.size() == 1);
  CHECK(fs::path(local_paths[0]).lexically_relative(local_gfs.path()) ==
        fs::path(paths[0]).lexically_relative(gfs.path()));
  CHECK(slurp(local_paths[0]) == slurp(paths[0]));

  // Filed: the swarm is not asked again.
  ce::docker::Client client;
  auto again = run_ce_env({host.env}, {"--swarm", "--gfs", gfs.str(), c.path(), in});
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains(paths[0] + " ok\n"));
  CHECK(again.err.find("submitted") == std::string::npos);
  CHECK(services_left(client) == 0);
  CHECK(poll_until([&] { return containers_left(c.name) == 0; }, 20));
}

TEST_CASE("a fleet call: the command's exit code is the call's, and a failed call files nothing", "[docker][swarm]") {
  FleetCall f("", "#!/bin/sh\necho partial > \"$2\"\necho failing >&2\nexit 3\n", "x\n");
  auto& [host, c, gfs, data, in] = f;
  (void)host, (void)data, (void)in;
  auto r = f.run();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.err, Catch::Contains("failing"));
  CHECK_THAT(r.err, Catch::Contains("exited with 3 on "));
  fs::path filed = gfs.path() / ("c_" + c.name);
  bool any_output = fs::exists(filed) && fs::recursive_directory_iterator(filed) != fs::recursive_directory_iterator() &&
                    [&] {
                      for (const auto& e : fs::recursive_directory_iterator(filed))
                        if (e.path().parent_path().filename() == "00") return true;
                      return false;
                    }();
  CHECK_FALSE(any_output);
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
  CHECK(poll_until([&] { return containers_left(c.name) == 0; }, 20));
  // Its outputs so far stay for a look, until ce-run gc.
  fs::path staging = gfs.path() / ".ce-run" / "staging" / "fleet";
  REQUIRE(std::distance(fs::directory_iterator(staging), fs::directory_iterator()) == 1);
  CHECK(slurp((fs::directory_iterator(staging)->path() / "00").string()) == "partial\n");
  auto gc = run_ce_env({host.env}, {"gc", "--gfs", gfs.str(), c.path()});
  INFO(gc.out << gc.err);
  CHECK(gc.exit_code == 0);
  CHECK_THAT(gc.out, Catch::Contains("removed fleet staging directory " + staging.string() + "/"));
  CHECK(fs::is_empty(staging));
}

TEST_CASE("a fleet call that asks for more than any node has fails at once, saying so", "[docker][swarm]") {
  FleetCall f("", upper_exec, "x\n");
  f.c.commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + f.c.name + "\"\ncpus = 64\n");
  auto r = f.run();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("64 CPUs (docker.conf), but the largest ready node of the swarm has"));
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
}

TEST_CASE("a fleet call: the timeout ends the job on its node and exits 124", "[docker][swarm]") {
  FleetCall f("", "#!/bin/sh\nsleep 120\n", "x\n");
  f.c.commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + f.c.name + "\"\ntimeout = \"2s\"\n");
  auto r = f.run();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 124);
  CHECK_THAT(r.err, Catch::Contains("ran longer than docker.conf's timeout (2 s) on "));
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
  CHECK(poll_until([&] { return containers_left(f.c.name) == 0; }, 30));
}

TEST_CASE("a fleet call: Ctrl-C or SIGTERM removes the job, and nothing of it is left on any node", "[docker][swarm]") {
  FleetCall f("", "#!/bin/sh\nsleep 120\n", "x\n");
  ce::docker::Client client;
  for (auto [sig, code] : {std::pair{SIGINT, 130}, std::pair{SIGTERM, 143}}) {
    INFO("signal " << sig);
    int pid = spawn_ce(f.args(), (f.data.path() / "err").string(), {f.host.env});
    wait_running(client, f.c.name);
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO(slurp((f.data.path() / "err").string()));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == code);
    CHECK(services_left(client) == 0);
    CHECK(poll_until([&] { return containers_left(f.c.name) == 0; }, 30));
  }
}

TEST_CASE("a fleet call whose worker's engine is killed runs again on another node and is filed once",
          "[docker][swarm]") {
  // Long enough to be caught running.
  FleetCall f("", "#!/bin/sh\nhostname\nsleep 6\ntr a-z A-Z < \"$1\" > \"$2\"\n", "survive\n");
  auto& [host, c, gfs, data, in] = f;
  (void)host, (void)in;
  std::string report = (data.path() / "report.json").string();
  ce::docker::Client client;
  ManagerDrained drained;
  int pid = spawn_ce(f.args({"--report", report}), (data.path() / "err").string(), {f.host.env});
  std::string first_node = wait_running(client, c.name).node;
  std::string hostname;
  for (const auto& n : client.list_nodes())
    if (n.id == first_node) hostname = n.hostname;
  REQUIRE(hostname.rfind("ce-swarm-w", 0) == 0);
  std::string worker = hostname.substr(9);
  // kill -9 of that node's dockerd: its job's task stays "running" in the
  // swarm's eyes (moby/moby#32979); ce-run sees the node down.
  REQUIRE(std::system(("kill -9 $(cat /run/ce-swarm/" + worker + "/docker.pid)").c_str()) == 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::string err = slurp((data.path() / "err").string());
  INFO(err);
  // The worker back for the cases after this one.
  CHECK(std::system((std::string(CE_SOURCE_DIR) + "/scripts/start-swarm >/dev/null").c_str()) == 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(err, Catch::Contains("attempt 1 on " + hostname + " lost: its node went down"));
  std::string json = slurp(report);
  CHECK_THAT(json, Catch::Contains("\"attempts\": 2"));
  CHECK(json.find("\"node\": \"" + hostname + "\"") == std::string::npos);
  // Filed once: one record, the right bytes.
  fs::path call_dir = gfs.path() / ("c_" + c.name);
  CHECK(records_in(call_dir) == 1);
  for (const auto& e : fs::recursive_directory_iterator(call_dir))
    if (e.path().parent_path().filename() == "00") CHECK(slurp(e.path().string()) == "SURVIVE\n");
  CHECK(services_left(client) == 0);
}

TEST_CASE("a task of 12 calls on the fleet spreads over the nodes and files what a local run files, byte for byte",
          "[docker][swarm]") {
  FleetHost host;
  TaskDir t;
  t.computation("leaf", {"seed", "param"}, {"value"}, "hostname; sleep 2; cat \"$1\" \"$2\" > \"$3\"");
  t.computation("gather", {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}, {"all"},
                "for last; do :; done; n=$(($# - 1)); i=0; for f; do i=$((i + 1)); "
                "if [ $i -le $n ]; then cat \"$f\"; fi; done > \"$last\"");
  t.inputs({"seed"});
  t.node("workflow", "computation", "gather");
  TempDir local_gfs;
  fs::create_directories(t.gfs.path() / "lit");
  fs::create_directories(local_gfs.path() / "lit");
  for (int k = 0; k < 11; ++k) {
    std::string leaf = "workflow/inputs/" + std::string(k < 10 ? "0" : "") + std::to_string(k) + "-l" + std::to_string(k);
    t.node(leaf, "computation", "leaf");
    t.node(leaf + "/inputs/00-s", "input", "seed");
    t.node(leaf + "/inputs/01-p", "literal", "lit/p" + std::to_string(k));
    for (const auto& g : {t.gfs.path(), local_gfs.path()})
      std::ofstream((g / "lit" / ("p" + std::to_string(k))).string()) << "param " << k << "\n";
  }
  t.commit();
  std::string seed = t.data("seed", "seed\n");
  std::string report = (t.input_dir.path() / "report.json").string();

  auto r = run_ce_env({host.env}, {"--swarm", "-j", "12", "--gfs", t.gfs.str(), "--report", report, t.path(), seed});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // Which node ran each call: the report's fleet.node, over at least two.
  std::string json = slurp(report);
  std::set<std::string> nodes;
  for (auto at = json.find("\"node\": \""); at != std::string::npos; at = json.find("\"node\": \"", at + 1))
    nodes.insert(json.substr(at + 9, json.find('"', at + 9) - at - 9));
  INFO(json.substr(0, 2000));
  CHECK(nodes.size() >= 2);
  CHECK(std::count(json.begin(), json.end(), '{') > 12);

  auto local = run_ce({"-j", "4", "--gfs", local_gfs.str(), t.path(), seed});
  INFO(local.out << local.err);
  REQUIRE(local.exit_code == 0);
  // The same outputs under the same names, byte for byte.
  auto outputs = [](const fs::path& gfs) {
    std::map<std::string, std::string> found;
    for (const auto& rel : files_below(gfs.string()))
      // c_NAME/CID12/NN/INS: an output (not a record, a log or a lock)
      if (fs::path p(rel); rel.rfind("c_", 0) == 0 && std::distance(p.begin(), p.end()) == 4 &&
                           fs::is_regular_file(gfs / rel) &&
                           std::next(p.begin(), 2)->string().find_first_not_of("0123456789") == std::string::npos)
        found[rel] = slurp((gfs / rel).string());
    return found;
  };
  auto fleet_outputs = outputs(t.gfs.path()), local_outputs = outputs(local_gfs.path());
  CHECK(fleet_outputs.size() == 12);
  CHECK(fleet_outputs == local_outputs);
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
}

TEST_CASE("a stage image is pushed once for the fleet, and the workers that run its calls pull it by digest",
          "[docker][swarm]") {
  FleetHost host;
  // A stage of its own (its key new to the registry).
  Computation c("next_stage && echo " + std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr)) +
                    " > /stage-file\neverytime && echo every > /tmp/every\n",
                upper_exec, compeval());
  TempDir gfs, data;
  ManagerDrained drained;
  fs::path tags = "/var/lib/ce-swarm/registry/data/docker/registry/v2/repositories/ce-run/stages/_manifests/tags";
  std::string image, link;
  std::time_t pushed = 0;
  std::set<std::string> ran_on;
  for (int k = 0; k < 4; ++k) {
    auto [r, report] = fleet_call_on(host, gfs, c, data, "in" + std::to_string(k), "call " + std::to_string(k) + "\n");
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::string json = slurp(report);
    auto at = json.find("/ce-run/stages@sha256:");
    REQUIRE(at != std::string::npos);
    std::string this_image = json.substr(json.rfind('"', at) + 1, json.find('"', at) - json.rfind('"', at) - 1);
    auto node_at = json.find("\"node\": \"");
    ran_on.insert(json.substr(node_at + 9, json.find('"', node_at + 9) - node_at - 9));
    std::string key = this_image.substr(this_image.find('@') + 1);
    if (k == 0) {
      image = this_image;
      // The tag the push made, and when.
      for (const auto& tag : fs::directory_iterator(tags))
        if (slurp((tag.path() / "current" / "link").string()) == key) link = (tag.path() / "current" / "link").string();
      REQUIRE(!link.empty());
      pushed = fs::last_write_time(link);
    }
    CHECK(this_image == image);  // the same image, by digest, for every call
  }
  CHECK(fs::last_write_time(link) == pushed);  // pushed once: never written again
  // Each worker that ran a call holds the image by its digest: it pulled it.
  CHECK(!ran_on.empty());
  for (const auto& hostname : ran_on) {
    INFO(hostname);
    REQUIRE(hostname.rfind("ce-swarm-w", 0) == 0);
    ce::docker::Client node(ce::docker::EngineAddress::parse("unix:///run/ce-swarm/" + hostname.substr(9) +
                                                            "/docker.sock"));
    CHECK(node.find_image(image).has_value());
  }

  // Another submitter (here: this engine without the stage images) builds
  // nothing: the stage is in the registry.
  ce::docker::Client client;
  for (const auto& stage : client.list_images({{ce::stages::label::computation, c.name}}))
    client.remove_image(stage.id, ce::docker::Force::yes);
  REQUIRE(client.list_images({{ce::stages::label::computation, c.name}}).empty());
  auto [r, report] = fleet_call_on(host, gfs, c, data, "in-again", "call again\n");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("the stages are in the fleet's registry already: none is built here"));
  CHECK_THAT(slurp(report), Catch::Contains("\"image\": \"" + image + "\"") &&
                                Catch::Contains("\"kind\": \"stage\"") && Catch::Contains("\"status\": \"cached\""));
  CHECK(client.list_images({{ce::stages::label::computation, c.name}}).empty());
  CHECK(fs::last_write_time(link) == pushed);
}

TEST_CASE("a fleet call's submitter killed with -9: the next run adopts the job it left and files the call once",
          "[docker][swarm]") {
  // Slow until the test lets it go (GFSDIR/fast, readable in the job).
  FleetCall f("", "#!/bin/sh\nwhile [ ! -e \"$GFSDIR/fast\" ]; do sleep 0.2; done\ntr a-z A-Z < \"$1\" > \"$2\"\n",
              "adopt\n");
  auto& [host, c, gfs, data, in] = f;
  (void)in;
  ce::docker::Client client;
  int pid = spawn_ce(f.args(), (data.path() / "err").string(), {host.env});
  auto left = wait_running(client, c.name);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  // Killed: nothing removed its job, which runs on.
  REQUIRE(client.list_services({{ce::runner::fleet_label::computation, c.name}}).size() == 1);
  // ce-run gc leaves its staging directory alone: a job fills it.
  auto gc = run_ce_env({host.env}, {"gc", "--gfs", gfs.str(), c.path()});
  INFO(gc.out << gc.err);
  CHECK(gc.exit_code == 0);
  CHECK_THAT(gc.out, !Catch::Contains("fleet staging directory"));

  std::string report = (data.path() / "report.json").string();
  std::thread let_go([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::ofstream((gfs.path() / "fast").string()) << "";
  });
  auto r = f.run({"--report", report});
  let_go.join();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("adopting the job " + left.service.substr(0, 12) + " that "));
  CHECK_THAT(r.err, !Catch::Contains("submitted as job"));
  auto paths = filed(r.out, gfs);
  REQUIRE(paths.size() == 1);
  std::string node_name;
  for (const auto& n : client.list_nodes())
    if (n.id == left.node) node_name = n.hostname;
  CHECK(slurp(paths[0]) == "ADOPT\n");
  CHECK_THAT(slurp(report), Catch::Contains("\"adopted\": true") && Catch::Contains("\"node\": \"" + node_name + "\""));
  CHECK(records_in(gfs.path() / ("c_" + c.name)) == 1);
  // The adopted attempt's staging went once filed; no other is left.
  CHECK(fs::is_empty(gfs.path() / ".ce-run" / "staging" / "fleet"));
  CHECK(services_left(client) == 0);
  CHECK(poll_until([&] { return containers_left(c.name) == 0; }, 30));
}

TEST_CASE("a fleet call's placement: a node it names runs it, and one no node matches fails at once",
          "[docker][swarm]") {
  FleetCall f("", upper_exec, "place\n");
  f.c.commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + f.c.name +
                                "\"\nplacement = [\"node.hostname == ce-swarm-w2\"]\n");
  std::string report = (f.data.path() / "report.json").string();
  auto r = f.run({"--report", report});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(slurp(report), Catch::Contains("\"node\": \"ce-swarm-w2\""));

  f.c.commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + f.c.name +
                                "\"\nplacement = [\"node.labels.ce-run-test-none == yes\"]\n");
  auto t0 = std::chrono::steady_clock::now();
  r = f.run();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("no node of the swarm matches the call's placement (node.labels.ce-run-test-none == yes"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
}

TEST_CASE("a fleet registry that needs credentials: refused without them, used from the invoker's Docker config "
          "by the push and by the workers' pulls",
          "[docker][swarm]") {
  std::string registry = swarm_setting("CE_SWARM_AUTH_REGISTRY");
  // A stage of its own: not in the registry yet, nor on any worker.
  std::string unique = std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
  FleetCall f("next_stage && echo " + unique + " > /stage-file\n", "#!/bin/sh\ntr a-z A-Z < \"$1\" > \"$2\"\n",
              "secret\n");
  std::ofstream(f.host.conf) << "registry = \"" << registry << "\"\n";
  ManagerDrained drained;  // a worker pulls the image: it needs the credentials too
  TempDir config;
  std::string docker_config = "DOCKER_CONFIG=" + config.str();
  auto r = f.run({}, {docker_config});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("cannot publish the stage image to the fleet's registry " + registry));

  // As `docker login` writes it: "auth" is base64 of USER:PASSWORD.
  std::string pair = swarm_setting("CE_SWARM_AUTH_USER") + ":" + slurp(swarm_setting("CE_SWARM_AUTH_PASSWORD_FILE"));
  pair.erase(pair.find_last_not_of("\n") + 1);
  std::ostringstream encoded;
  {
    Poco::Base64Encoder encoder(encoded);
    encoder << pair;
  }
  std::ofstream((config.path() / "config.json").string())
      << R"({"auths": {"https://)" << registry << R"(/v1/": {"auth": ")" << encoded.str() << R"("}}})";
  std::string report = (f.data.path() / "report.json").string();
  r = f.run({"--report", report}, {docker_config});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  auto paths = filed(r.out, f.gfs);
  REQUIRE(paths.size() == 1);
  CHECK(slurp(paths[0]) == "SECRET\n");
  std::string json = slurp(report);
  CHECK_THAT(json, Catch::Contains("\"image\": \"" + registry + "/ce-run/stages@sha256:"));
  CHECK_THAT(json, Catch::Contains("\"node\": \"ce-swarm-w"));
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
}

TEST_CASE("a fleet call's output is passed on while its job runs, and once", "[docker][swarm]") {
  FleetCall f("", "#!/bin/sh\necho started-$((6*7)) >&2\nwhile [ ! -e \"$GFSDIR/fast\" ]; do sleep 0.2; done\n"
                  "echo finished >&2\ntr a-z A-Z < \"$1\" > \"$2\"\n", "live\n");
  std::string err = (f.data.path() / "err").string();
  int pid = spawn_ce(f.args(), err, {f.host.env});
  // Seen while the job still waits for the test.
  CHECK(poll_until([&] { return slurp(err).find("started-42") != std::string::npos; }, 120));
  CHECK(slurp(err).find("finished") == std::string::npos);
  std::ofstream((f.gfs.path() / "fast").string()) << "";
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::string shown = slurp(err);
  INFO(shown);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(shown.find("started-42") == shown.rfind("started-42"));
  CHECK(shown.find("finished") != std::string::npos);
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
}

// The capability sets of the job's command, from /proc/self/status.
std::map<std::string, unsigned long long> capability_sets(const std::string& status) {
  std::map<std::string, unsigned long long> sets;
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Cap", 0) == 0 && line.find(':') != std::string::npos)
      sets[line.substr(0, line.find(':'))] = std::stoull(line.substr(line.find(':') + 1), nullptr, 16);
  return sets;
}

TEST_CASE("a fleet call with network none has only loopback, no capability it was made with, and no view of the "
          "fleet's own files",
          "[docker][swarm]") {
  // On the manager: its engine has a bridge network, which a Swarm job gets
  // when it asks for no network (a worker of the test fleet has none).
  FleetCall f("", "#!/bin/sh\n{ tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort; grep '^Cap' /proc/self/status; "
                  "ping -c 1 -W 1 127.0.0.1 >/dev/null && echo loopback-up; echo own-$(ls -A \"$GFSDIR/.ce-run\" | wc -l); "
                  "} > \"$2\"\n",
              "net\n");
  f.c.commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + f.c.name +
                                "\"\nplacement = [\"node.role == manager\"]\n");
  auto r = f.run();
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto paths = filed(r.out, f.gfs);
  REQUIRE(paths.size() == 1);
  std::string seen = slurp(paths[0]);
  INFO(seen);
  CHECK(seen.rfind("lo\nCap", 0) == 0);
  CHECK_THAT(seen, Catch::Contains("loopback-up"));
  // The fleet's own files in the GFS (other calls' trees and staging) are
  // hidden from the job, whose steps run as root.
  CHECK_THAT(seen, Catch::Contains("own-0\n"));
  CHECK(fs::exists(f.gfs.path() / ".ce-run" / "trees"));
  constexpr unsigned long long sys_admin = 1ull << 21, net_admin = 1ull << 12;
  for (const auto& [set, bits] : capability_sets(seen)) {
    INFO(set);
    CHECK((bits & (sys_admin | net_admin)) == 0);
  }

  // Asked for: the node's network.
  f.c.commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + f.c.name +
                                "\"\nnetwork = \"bridge\"\nplacement = [\"node.role == manager\"]\n");
  r = f.run();
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  paths = filed(r.out, f.gfs);
  REQUIRE(paths.size() == 1);
  CHECK_THAT(slurp(paths[0]), Catch::Contains("eth0\n"));
}

TEST_CASE("two submitters of one call on one GFS: one job, filed once, the other answered from the GFS",
          "[docker][swarm]") {
  FleetCall f("", "#!/bin/sh\nsleep 2\ntr a-z A-Z < \"$1\" > \"$2\"\n", "twice\n");
  auto first = std::async(std::launch::async, [&] { return f.run(); });
  auto second = std::async(std::launch::async, [&] { return f.run(); });
  RunResult a = first.get(), b = second.get();
  INFO(a.out << a.err << "\n---\n" << b.out << b.err);
  CHECK(a.exit_code == 0);
  CHECK(b.exit_code == 0);
  auto submitted = [](const std::string& err) {
    std::size_t n = 0;
    for (auto at = err.find("submitted as job"); at != std::string::npos; at = err.find("submitted as job", at + 1)) ++n;
    return n;
  };
  CHECK(submitted(a.err) + submitted(b.err) == 1);
  auto paths = filed(a.out, f.gfs);
  REQUIRE(paths.size() == 1);
  CHECK(filed(b.out, f.gfs) == paths);
  CHECK(slurp(paths[0]) == "TWICE\n");
  CHECK_THAT(a.out + b.out, Catch::Contains(paths[0] + " computed") && Catch::Contains(paths[0] + " ok"));
  CHECK(records_in(f.gfs.path() / ("c_" + f.c.name)) == 1);
  ce::docker::Client client;
  CHECK(services_left(client) == 0);
}
