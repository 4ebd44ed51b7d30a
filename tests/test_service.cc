// The job service end to end: `ce-run serve` as root on loopback, runs
// submitted over HTTP with the tokens of nobody and daemon, on the real
// engine (docs/service.md, docs/api.md).
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/StreamSocket.h>
#include <boost/filesystem.hpp>
#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "support/ce_run.h"
#include "support/computation.h"
#include "support/service.h"
#include "support/task.h"

using namespace ce::test;
namespace fs = boost::filesystem;
using Poco::JSON::Object;

namespace {

// A CompEval computation: input TEXT, output COPY; each run of its exec
// (`body` first) counted in /tmp/runs of its container.
std::map<std::string, std::string> copy_files() {
  return {{"inputs", "text\n"}, {"outputs", "copy\n"}};
}
std::string copy_exec(const std::string& body = "") {
  return "#!/bin/sh\necho run >> /tmp/runs\n" + body + "cat \"$1\" > \"$2\"\necho \"copied $(wc -c < \"$1\") bytes\"\n";
}

std::string run_body(const std::string& repository, const std::vector<std::string>& inputs,
                     const std::string& more = "") {
  std::string list;
  for (const auto& i : inputs) list += (list.empty() ? "\"" : ", \"") + i + "\"";
  return "{\"repository\": \"" + repository + "\", \"inputs\": [" + list + "]" + more + "}";
}

std::string state_of(const Object::Ptr& run) { return run->getValue<std::string>("state"); }

std::string commit_as_nobody(const std::string& dir, const std::string& file, const std::string& content) {
  std::ofstream(dir + "/" + file) << content;
  sh(dir, "git -c safe.directory='*' add -A && git -c safe.directory='*' -c user.name=t -c user.email=t@e commit -q -m change"
          " && chown -R 65534:65534 .");
  FILE* p = ::popen(("git -c safe.directory='*' -C " + dir + " rev-parse HEAD").c_str(), "r");
  char id[64] = {};
  if (!p || !std::fgets(id, sizeof id, p)) throw std::runtime_error("no commit");
  ::pclose(p);
  return std::string(id, 40);
}

}  // namespace

TEST_CASE("the service runs a computation as the token's user, then answers the same call from the GFS",
          "[docker][service]") {
  Computation c("", copy_exec(), copy_files());
  ServiceHost host;
  host.give(c.path());
  std::string text = host.input("text.txt", "hello service\n");
  host.start();

  std::int64_t id = host.submit(run_body(c.path(), {text}));
  Object::Ptr run = host.wait(id);
  REQUIRE(state_of(run) == "succeeded");
  CHECK(run->getValue<std::string>("kind") == "computation");
  CHECK(run->getValue<std::string>("user") == "nobody");
  CHECK(run->getValue<int>("exit_code") == 0);
  CHECK(run->getValue<std::string>("commit").size() == 40);
  auto calls = run->getArray("calls");
  REQUIRE(calls->size() == 1);
  Object::Ptr call = calls->getObject(0);
  CHECK(call->getValue<std::string>("state") == "computed");
  // The single call's report, as --report writes it.
  Object::Ptr report = call->getObject("report");
  CHECK(report->getValue<std::string>("outcome") == "computed");
  CHECK(report->getObject("computation")->getValue<std::string>("name") == c.name);
  auto outputs = run->getArray("outputs");
  REQUIRE(outputs->size() == 1);
  std::string output = outputs->getElement<std::string>(0);
  CHECK(output.rfind(host.gfs + "/c_" + c.name + "/", 0) == 0);
  CHECK(slurp(output) == "hello service\n");
  // The call's log: the command's output; the run's own log.
  HttpAnswer log = host.get("/v1/runs/" + std::to_string(id) + "/log?call=0");
  CHECK(log.status == 200);
  CHECK(log.body.find("copied 14 bytes") != std::string::npos);
  CHECK(log.headers["X-Log-Complete"] == "1");
  CHECK(host.get("/v1/runs/" + std::to_string(id) + "/log").body.find("succeeded (exit 0)") != std::string::npos);
  // From an offset: the rest only.
  std::size_t at = log.body.find("copied");
  CHECK(host.get("/v1/runs/" + std::to_string(id) + "/log?call=0&offset=" + std::to_string(at)).body ==
        log.body.substr(at));

  std::int64_t again = host.submit(run_body(c.path(), {text}));
  Object::Ptr second = host.wait(again);
  REQUIRE(state_of(second) == "succeeded");
  CHECK(second->getArray("calls")->getObject(0)->getValue<std::string>("state") == "reused");
  CHECK(second->getArray("outputs")->getElement<std::string>(0) == output);
  CHECK(c.count_lines_in_containers("/tmp/runs") == 1);

  // The list, newest first, filtered and paged.
  Object::Ptr list = host.get("/v1/runs?state=succeeded&limit=1").json();
  REQUIRE(list->getArray("runs")->size() == 1);
  CHECK(list->getArray("runs")->getObject(0)->getValue<std::int64_t>("id") == again);
  std::string next = list->getValue<std::string>("next");
  Object::Ptr page2 = host.get(next).json();
  CHECK(page2->getArray("runs")->getObject(0)->getValue<std::int64_t>("id") == id);
  CHECK(host.get("/v1/runs?state=running").json()->getArray("runs")->size() == 0);

  std::string metrics = host.get("/metrics").body;
  CHECK(metrics.find("ce_run_runs{state=\"succeeded\"} 2") != std::string::npos);
  CHECK(metrics.find("ce_run_calls_total{result=\"computed\"} 1") != std::string::npos);
  CHECK(metrics.find("ce_run_calls_total{result=\"reused\"} 1") != std::string::npos);
  CHECK(metrics.find("ce_run_call_duration_seconds_count 1") != std::string::npos);
  Object::Ptr nodes = host.get("/v1/nodes").json();
  CHECK(nodes->getValue<std::string>("kind") == "engine");
  CHECK(nodes->getValue<int>("max_calls") == 2);
  Object::Ptr node = nodes->getArray("nodes")->getObject(0);
  CHECK(node->getValue<int>("cpus") >= 1);
  bool listed = false;
  for (std::size_t i = 0; i < node->getArray("containers")->size(); ++i)
    listed = listed || node->getArray("containers")->getObject(static_cast<unsigned>(i))->getValue<std::string>("computation") == c.name;
  CHECK(listed);
}

TEST_CASE("the service: tokens for every change, another user's run not theirs, paths only under the roots",
          "[docker][service][security]") {
  Computation c("", copy_exec(), copy_files());
  TempDir outside;
  ServiceHost host;
  // A link in the repository to a directory outside it, and one in the
  // input root to a file outside it.
  sh(c.path(), "ln -s " + outside.str() + " escape && git add escape && git -c user.name=t -c user.email=t@e commit -q -m link");
  host.give(c.path());
  std::string text = host.input("text.txt", "x\n");
  fs::create_symlink("/etc/passwd", host.inputs + "/passwd");
  host.start();
  std::string body = run_body(c.path(), {text});

  HttpAnswer none = host.request("POST", "/v1/runs", body);
  CHECK(none.status == 401);
  CHECK(none.headers["WWW-Authenticate"] == "Bearer realm=\"ce-run\"");
  CHECK(host.request("POST", "/v1/runs", body, "not-a-token-of-the-service-at-all").status == 401);
  CHECK(host.request("POST", "/v1/runs", body, "").json()->getValue<std::string>("error").find("Authorization: Bearer") !=
        std::string::npos);

  auto refused = [&](const std::string& b) {
    HttpAnswer a = host.request("POST", "/v1/runs", b, ServiceHost::token);
    return std::to_string(a.status) + " " + a.json()->getValue<std::string>("error");
  };
  CHECK(refused(run_body(outside.str(), {text})).rfind("403 the repository " + outside.str() + " is not under a repository root", 0) == 0);
  CHECK(refused(run_body(c.path(), {"/etc/shadow"})).rfind("403 the input /etc/shadow is not in the GFS nor under an input root", 0) == 0);
  CHECK(refused(run_body(c.path(), {host.inputs + "/passwd"})).find("(/etc/passwd) is not in the GFS") != std::string::npos);
  CHECK(refused(run_body(c.path(), {"../../etc/passwd"})).rfind("400 $.inputs[0] has a '..' part", 0) == 0);
  CHECK(refused("{\"repository\": \"" + c.path() + "\", \"path\": \"escape\"}").find("escape leads out of the repository") !=
        std::string::npos);
  // A file nobody may not read is refused by the kernel, not by ce-run's say-so.
  std::string secret = host.input("secret.txt", "s\n");
  ::chmod(secret.c_str(), 0600);
  CHECK(refused(run_body(c.path(), {secret})).find("Permission denied") != std::string::npos);

  // An upload: kept for the run, readable by its user, gone afterwards.
  std::int64_t id = host.submit("{\"repository\": \"" + c.path() +
                                "\", \"inputs\": [{\"name\": \"up.txt\", \"content\": \"uploaded\\n\"}]}");
  // daemon may not cancel nobody's run.
  HttpAnswer other = host.request("DELETE", "/v1/runs/" + std::to_string(id), "", ServiceHost::daemon_token);
  CHECK(other.status == 403);
  Object::Ptr run = host.wait(id);
  REQUIRE(state_of(run) == "succeeded");
  CHECK(slurp(run->getArray("outputs")->getElement<std::string>(0)) == "uploaded\n");
  CHECK(fs::is_empty(host.state + "/uploads"));
  // Nothing was stored of the refused requests.
  CHECK(host.get("/v1/runs").json()->getArray("runs")->size() == 1);
  CHECK(host.request("DELETE", "/v1/runs/" + std::to_string(id), "", ServiceHost::token).status == 409);
}

TEST_CASE("the service without tokens changes nothing, and never listens beyond loopback", "[docker][service][security]") {
  ServiceHost host;
  fs::remove(host.conf_dir + "/tokens");
  host.start();
  HttpAnswer a = host.request("POST", "/v1/runs", "{}", "whatever-token-whatever-token");
  CHECK(a.status == 403);
  CHECK(a.json()->getValue<std::string>("error").find("has no tokens file") != std::string::npos);
  CHECK(host.get("/v1/runs").status == 200);
  host.stop();
  ServiceHost wide;
  fs::remove(wide.conf_dir + "/tokens");
  CHECK_THROWS_WITH(wide.start({"--listen", "0.0.0.0:0"}), Catch::Contains("refusing to listen on 0.0.0.0, not a loopback address, without tokens"));
}

TEST_CASE("the service streams a call's log as it grows, to the end of the run", "[docker][service]") {
  Computation c("", copy_exec("for i in 1 2 3; do echo line-$i; sleep 0.3; done\n"), copy_files());
  ServiceHost host;
  host.give(c.path());
  std::string text = host.input("text.txt", "x\n");
  host.start();
  std::int64_t id = host.submit(run_body(c.path(), {text}));
  // Chunked text, followed.
  HttpAnswer followed;
  std::thread follower([&] { followed = host.get("/v1/runs/" + std::to_string(id) + "/log?call=0&follow=1"); });
  // Server-sent events, from the start.
  HttpAnswer events = host.request("GET", "/v1/runs/" + std::to_string(id) + "/log?call=0", "", "",
                                   {{"Accept", "text/event-stream"}});
  follower.join();
  CHECK(state_of(host.wait(id)) == "succeeded");
  CHECK(followed.status == 200);
  CHECK(followed.headers["Transfer-Encoding"] == "chunked");
  for (const char* line : {"line-1", "line-2", "line-3", "copied 2 bytes"})
    CHECK(followed.body.find(line) != std::string::npos);
  CHECK(followed.body == host.get("/v1/runs/" + std::to_string(id) + "/log?call=0").body);
  CHECK(events.headers["Content-Type"] == "text/event-stream");
  CHECK(events.body.find("event: log\ndata: {") != std::string::npos);
  CHECK(events.body.find("line-3") != std::string::npos);
  CHECK(events.body.find("event: end\ndata: {\"state\":\"succeeded\"}") != std::string::npos);
}

TEST_CASE("DELETE stops a running run: nothing of it runs on, nothing is filed, and a queued one never starts",
          "[docker][service]") {
  Computation c("", copy_exec("touch /tmp/started; sleep 60\n"), copy_files());
  ServiceHost host(1);
  host.give(c.path());
  std::string a = host.input("a.txt", "a\n"), b = host.input("b.txt", "b\n");
  host.start();
  std::int64_t first = host.submit(run_body(c.path(), {a}));
  std::int64_t second = host.submit(run_body(c.path(), {b}));
  REQUIRE(poll_until([&] { return c.exists_in_containers("/tmp/started"); }, 60));
  // One call at a time: the second waits.
  CHECK(host.get("/metrics").body.find("ce_run_calls_waiting 1") != std::string::npos);
  HttpAnswer queued = host.request("DELETE", "/v1/runs/" + std::to_string(second), "", ServiceHost::token);
  CHECK(queued.status == 200);
  CHECK(state_of(queued.json()) == "cancelled");
  auto started = std::chrono::steady_clock::now();
  HttpAnswer running = host.request("DELETE", "/v1/runs/" + std::to_string(first), "", ServiceHost::token);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(30));
  REQUIRE(running.status == 200);
  Object::Ptr run = running.json();
  CHECK(state_of(run) == "cancelled");
  CHECK(run->getValue<int>("exit_code") == 130);
  // The command is gone from the container, and nothing is in the GFS.
  std::string container = c.run_containers().front();
  CHECK(poll_until([&] { return c.client.container_process_count(container) == 2; }, 10));  // init and sleep
  // (The call's directory has its lock and an empty logs/, no record, no output.)
  for (const auto& f : files_below(host.gfs + "/c_" + c.name)) {
    INFO(f);
    CHECK(std::regex_match(f, std::regex("[0-9a-f]{12}(/\\.locks(/[0-9a-f]{12})?|/logs)?")));
  }
  CHECK(c.count_lines_in_containers("/tmp/runs") == 1);
}
