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
#include <csignal>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "support/ce_run.h"
#include "support/computation.h"
#include "support/engine_outage.h"
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
  return "#!/bin/sh\necho run >> /tmp/runs\n" + body +
         "cat \"$1\" > \"$2\"\necho \"copied $(wc -c < \"$1\") bytes as uid $(id -u)\"\n";
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
  CHECK(log.body.find("copied 14 bytes as uid 65534") != std::string::npos);  // nobody's rights, not root's
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
  CHECK(events.body.find("event: end\ndata: {\"state\":\"computed\"}") != std::string::npos);  // the call's
  HttpAnswer run_events = host.request("GET", "/v1/runs/" + std::to_string(id) + "/log", "", "",
                                       {{"Accept", "text/event-stream"}});
  CHECK(run_events.body.find("event: end\ndata: {\"state\":\"succeeded\"}") != std::string::npos);  // the run's
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

TEST_CASE("kill -9 of the service during runs: every accepted run is there after a restart, and no call is filed twice",
          "[docker][service][fault]") {
  Computation c("", copy_exec("sleep 1\n"), copy_files());
  ServiceHost host(1);
  host.give(c.path());
  std::vector<std::string> inputs = {host.input("a.txt", "a\n"), host.input("b.txt", "b\n"), host.input("c.txt", "c\n")};
  host.start();
  std::vector<std::int64_t> ids;
  for (const auto& i : inputs) ids.push_back(host.submit(run_body(c.path(), {i})));
  ids.push_back(host.submit(run_body(c.path(), {inputs[0]})));  // the same call as the first
  REQUIRE(poll_until([&] { return c.count_lines_in_containers("/tmp/runs") >= 1; }, 60));
  host.kill9();

  host.start();
  std::vector<std::string> outputs;
  for (auto id : ids) {
    Object::Ptr run = host.wait(id);
    INFO("run " << id << ": " << host.get("/v1/runs/" + std::to_string(id) + "/log").body);
    REQUIRE(state_of(run) == "succeeded");
    outputs.push_back(run->getArray("outputs")->getElement<std::string>(0));
  }
  CHECK(host.wait(ids[0])->getValue<int>("attempts") == 2);  // it was running when the service was killed
  CHECK(host.get("/v1/runs/" + std::to_string(ids[0]) + "/log").body.find("the service stopped during this run") !=
        std::string::npos);
  CHECK(outputs[3] == outputs[0]);
  CHECK(slurp(outputs[1]) == "b\n");
  // Three distinct calls, each filed once: the killed one ran again (its
  // leftover command stopped first), and of the first and the fourth run
  // (the same call, queued again together) one computed it, the other was
  // answered from the GFS.
  CHECK(c.count_lines_in_containers("/tmp/runs") == 4);
  std::multiset<std::string> same_call;
  for (auto id : {ids[0], ids[3]})
    same_call.insert(host.wait(id)->getArray("calls")->getObject(0)->getValue<std::string>("state"));
  CHECK(same_call == std::multiset<std::string>{"computed", "reused"});
  std::size_t records = 0;
  for (const auto& f : files_below(host.gfs + "/c_" + c.name))
    records += std::regex_match(f, std::regex("[0-9a-f]{12}/00/[0-9a-f]{12}"));
  CHECK(records == 3);

  // SIGTERM: a running run stops and runs again at the next start.
  std::int64_t late = host.submit(run_body(c.path(), {host.input("d.txt", "d\n")}));
  REQUIRE(poll_until([&] { return c.count_lines_in_containers("/tmp/runs") >= 5; }, 60));
  host.stop();
  CHECK(host.log().find("running runs run again at the next start") != std::string::npos);
  host.start();
  CHECK(state_of(host.wait(late)) == "succeeded");
}

TEST_CASE("a commit notification re-runs the repository's targets at that commit: only what changed is computed",
          "[docker][service]") {
  Computation c("", copy_exec(), copy_files());
  ServiceHost host;
  std::string text = host.input("text.txt", "notified\n");
  host.give(c.path());
  host.more_conf = "[[repository]]\nname = \"copier\"\npath = \"" + c.path() +
                   "\"\nuser = \"nobody\"\nrefs = [\"refs/heads/main\"]\n[[repository.target]]\npath = \"\"\n"
                   "inputs = [\"" + text + "\"]\n";
  host.start();
  auto notify = [&](const std::string& commit, const std::string& ref = "refs/heads/main") {
    HttpAnswer a = host.request("POST", "/v1/hooks/commit",
                                "{\"repository\": \"copier\", \"ref\": \"" + ref + "\", \"commit\": \"" + commit + "\"}",
                                ServiceHost::token);
    REQUIRE(a.status == 202);
    std::vector<std::int64_t> ids;
    auto runs = a.json()->getArray("runs");
    for (std::size_t i = 0; i < runs->size(); ++i) ids.push_back(runs->getObject(static_cast<unsigned>(i))->getValue<std::int64_t>("id"));
    return ids;
  };
  auto call_state = [&](std::int64_t id) {
    Object::Ptr run = host.wait(id);
    INFO(host.get("/v1/runs/" + std::to_string(id) + "/log").body);
    REQUIRE(state_of(run) == "succeeded");
    return run->getArray("calls")->getObject(0)->getValue<std::string>("state");
  };
  std::string first = commit_as_nobody(c.path(), "README", "one\n");
  auto ids = notify(first);
  REQUIRE(ids.size() == 1);
  CHECK(call_state(ids[0]) == "computed");
  Object::Ptr run = host.wait(ids[0]);
  CHECK(run->getValue<std::string>("commit") == first);
  CHECK(run->getValue<std::string>("ref") == "refs/heads/main");
  CHECK(run->getObject("hook")->getValue<std::string>("repository") == "copier");
  CHECK(call_state(notify(first)[0]) == "reused");
  // The work tree moves on; the commit asked for is what runs.
  std::string second = commit_as_nobody(c.path(), "README", "two\n");
  commit_as_nobody(c.path(), "README", "three\n");
  CHECK(call_state(notify(second)[0]) == "computed");
  CHECK(host.wait(notify(second)[0])->getValue<std::string>("commit") == second);
  CHECK(c.count_lines_in_containers("/tmp/runs") == 2);
  // A ref the repository is not configured for triggers nothing; an
  // unknown repository is a 404.
  CHECK(notify(second, "refs/heads/feature").empty());
  CHECK(host.request("POST", "/v1/hooks/commit",
                     "{\"repository\": \"nope\", \"ref\": \"main\", \"commit\": \"" + second + "\"}", ServiceHost::token)
            .status == 404);
  CHECK(host.request("POST", "/v1/hooks/commit", "{\"repository\": \"copier\"}").status == 401);
  // POST /v1/runs at a commit (a prefix) or a branch: the same checkouts.
  std::int64_t by_prefix = host.submit("{\"repository\": \"" + c.path() + "\", \"commit\": \"" + first.substr(0, 10) +
                                       "\", \"inputs\": [\"" + text + "\"]}");
  CHECK(call_state(by_prefix) == "reused");
  CHECK(host.wait(by_prefix)->getValue<std::string>("commit") == first);
  std::int64_t bad = host.submit("{\"repository\": \"" + c.path() + "\", \"branch\": \"no-such-branch\"}");
  Object::Ptr failed = host.wait(bad);
  CHECK(state_of(failed) == "failed");
  CHECK(failed->getValue<std::string>("error").find("has no branch no-such-branch") != std::string::npos);
}

TEST_CASE("a task through the service: its calls as a graph, each call's log, reused at a branch's checkout",
          "[docker][service]") {
  TaskDir t;
  upper_count_task(t);
  ServiceHost host;
  host.give(t.path());
  std::string text = host.input("t.txt", "abc\n");
  host.start();
  std::int64_t id = host.submit(run_body(t.path(), {text}));
  Object::Ptr run = host.wait(id);
  INFO(host.get("/v1/runs/" + std::to_string(id) + "/log").body);
  REQUIRE(state_of(run) == "succeeded");
  CHECK(run->getValue<std::string>("kind") == "task");
  auto calls = run->getArray("calls");
  REQUIRE(calls->size() == 2);
  CHECK(calls->getObject(0)->getValue<std::string>("node") == "workflow/inputs/01-big");
  CHECK(calls->getObject(1)->getValue<std::string>("node") == "workflow");
  CHECK(calls->getObject(1)->getArray("needs")->getElement<int>(0) == 0);
  CHECK(calls->getObject(1)->getValue<std::string>("state") == "computed");
  CHECK(calls->getObject(0)->getObject("report")->getValue<std::string>("outcome") == "computed");
  CHECK(slurp(run->getArray("outputs")->getElement<std::string>(0)) == "8\n");
  CHECK(host.get("/v1/runs/" + std::to_string(id) + "/log?call=0").body.find("upper-said-ABC") != std::string::npos);
  CHECK(host.get("/v1/runs/" + std::to_string(id) + "/log?call=2").status == 404);
  // The same task at its branch: checked out once, every call reused.
  std::int64_t branch = host.submit(run_body(t.path(), {text}, ", \"branch\": \"main\""));
  Object::Ptr again = host.wait(branch);
  REQUIRE(state_of(again) == "succeeded");
  CHECK(again->getArray("calls")->getObject(0)->getValue<std::string>("state") == "reused");
  CHECK(again->getArray("calls")->getObject(1)->getValue<std::string>("state") == "reused");
  CHECK(t.runs("upper") == 1);
  CHECK(t.runs("count") == 1);
}

TEST_CASE("500 malformed requests: each a 4xx, none crashes the service or changes its state", "[docker][service][fault]") {
  ServiceHost host;
  host.more_conf = "max_body = \"64k\"\n";
  host.start();
  std::size_t before = host.get("/v1/runs").json()->getArray("runs")->size();
  std::vector<std::string> bodies = {
      "", "{", "}", "[]", "null", "\"x\"", "{\"repository\": 1}", "{\"repository\": \"/x\", \"inputs\": {}}",
      "{\"repository\": \"/nope\"}", "{\"repository\": \"/r\", \"jobs\": -1}", "{\"a\": 1}", std::string(5000, '['),
      "{\"repository\": \"/r\", \"inputs\": [{\"name\": \"..\", \"content\": \"\"}]}", "\xff\xfe\x00\x01",
      "{\"repository\": \"\\ud800\"}", "{\"repository\": \"/r\", \"commit\": \"zz\"}"};
  std::mt19937 random(15);
  std::map<int, int> statuses;
  for (int i = 0; i < 500; ++i) {
    std::string body = bodies[i % bodies.size()];
    if (i % 3 == 1 && !body.empty()) body[random() % body.size()] = static_cast<char>(random() % 256);
    HttpAnswer a;
    switch (i % 5) {
      case 0: a = host.request("POST", "/v1/runs", body, ServiceHost::token); break;
      case 1: a = host.request("POST", "/v1/hooks/commit", body, ServiceHost::token); break;
      case 2: a = host.request("PUT", "/v1/runs", body, ServiceHost::token); break;
      case 3: a = host.request("GET", "/v1/runs/" + std::to_string(random() % 1000) + "/log?offset=x"); break;
      case 4: a = host.request("DELETE", "/v1/runs/" + std::string(1, "a1-/%"[random() % 5]) + "9", "", ServiceHost::token); break;
    }
    ++statuses[a.status];
    INFO(i << ": " << a.status << " " << a.body);
    REQUIRE(a.status >= 400);
    REQUIRE(a.status < 500);
    REQUIRE(a.json()->has("error"));
  }
  // A body over the limit (64k here): one that says so in Content-Length is
  // refused before it is read, one sent in chunks once 64k are.
  {
    Poco::Net::HTTPClientSession session("127.0.0.1", host.port);
    Poco::Net::HTTPRequest request("POST", "/v1/runs", Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Authorization", std::string("Bearer ") + ServiceHost::token);
    request.setContentLength(70 << 20);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    session.receiveResponse(response);
    CHECK(response.getStatus() == 413);
  }
  {
    Poco::Net::HTTPClientSession session("127.0.0.1", host.port);
    Poco::Net::HTTPRequest request("POST", "/v1/runs", Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Authorization", std::string("Bearer ") + ServiceHost::token);
    request.setChunkedTransferEncoding(true);
    session.sendRequest(request) << std::string(100 * 1024, ' ');
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(response.getStatus() == 413);
    CHECK(body.find("larger than 65536 bytes") != std::string::npos);
  }
  CHECK(host.get("/v1/health").status == 200);
  CHECK(host.get("/v1/runs").json()->getArray("runs")->size() == before);
  CHECK(statuses.size() >= 4);
  std::ostringstream counts;
  for (const auto& [status, n] : statuses) counts << " " << status << ": " << n;
  WARN("500 malformed requests answered" << counts.str());
}

TEST_CASE("200 runs submitted at once all finish, each distinct call once, with 100 clients following logs",
          "[docker][service][load]") {
  Computation c("", copy_exec("sleep 0.2\n"), copy_files());
  ServiceHost host;
  host.give(c.path());
  std::vector<std::string> inputs;
  for (int i = 0; i < 10; ++i) inputs.push_back(host.input("in" + std::to_string(i), "input " + std::to_string(i) + "\n"));
  host.start();
  std::vector<std::int64_t> ids(200);
  std::atomic<int> refused{0};
  auto started = std::chrono::steady_clock::now();
  auto seconds_since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  std::vector<std::thread> submitters;
  for (int t = 0; t < 8; ++t)
    submitters.emplace_back([&, t] {
      for (int i = t; i < 200; i += 8) {
        try {
          ids[i] = host.submit(run_body(c.path(), {inputs[i % 10]}));
        } catch (const std::exception&) {
          ++refused;
        }
      }
    });
  for (auto& s : submitters) s.join();
  REQUIRE(refused == 0);
  double submitted = seconds_since();
  // 100 clients follow the logs of 100 of the runs (two each of 50), from
  // the start, at once.
  std::vector<HttpAnswer> followed(100);
  std::vector<std::thread> followers;
  for (int f = 0; f < 100; ++f)
    followers.emplace_back([&, f] {
      try {
        followed[f] = host.get("/v1/runs/" + std::to_string(ids[f / 2 * 4]) + "/log?call=0&follow=1");
      } catch (const std::exception& e) {
        followed[f].body = e.what();
      }
    });
  for (auto& f : followers) f.join();
  double followed_all = seconds_since();
  for (int f = 0; f < 100; ++f) {
    INFO("follower " << f << ": " << followed[f].body);
    CHECK(followed[f].status == 200);
    bool ended = followed[f].body.find("] call computed") != std::string::npos ||
                 followed[f].body.find("] call cached") != std::string::npos;
    CHECK(ended);
  }
  std::map<std::string, int> states;
  std::set<std::string> outputs;
  for (auto id : ids) {
    Object::Ptr run = host.wait(id);
    ++states[state_of(run)];
    if (state_of(run) == "succeeded") outputs.insert(run->getArray("outputs")->getElement<std::string>(0));
  }
  CHECK(states == std::map<std::string, int>{{"succeeded", 200}});
  // Figures, not assertions (docs/service.md's come from here).
  WARN("200 runs accepted in " << submitted << " s; 100 log followers done at " << followed_all
                               << " s; all 200 runs ended at " << seconds_since() << " s");
  CHECK(outputs.size() == 10);
  CHECK(c.count_lines_in_containers("/tmp/runs") == 10);
  std::string metrics = host.get("/metrics").body;
  CHECK(metrics.find("ce_run_calls_total{result=\"computed\"} 10") != std::string::npos);
  CHECK(metrics.find("ce_run_runs{state=\"succeeded\"} 200") != std::string::npos);
}

TEST_CASE("the engine killed under a run of the service's: the service stays up, and the run runs again once the engine is back",
          "[docker][service][outage]") {
  Computation c("", copy_exec("[ -e \"$GFSDIR/fast\" ] || sleep 60\n"), copy_files());
  ServiceHost host;
  host.give(c.path());
  std::string text = host.input("text.txt", "survives\n");
  host.start();
  std::int64_t id = host.submit(run_body(c.path(), {text}));
  REQUIRE(poll_until([&] { return c.count_lines_in_containers("/tmp/runs") == 1; }, 60));
  {
    EngineOutage outage(SIGKILL);
    REQUIRE(outage.stopped());
    // The run goes back to the queue; the service answers meanwhile.
    REQUIRE(poll_until([&] { return host.get("/v1/runs/" + std::to_string(id) + "/log").body.find(
                                         "the Docker engine went away") != std::string::npos; }, 30));
    CHECK(state_of(host.get("/v1/runs/" + std::to_string(id)).json()) == "queued");
    HttpAnswer nodes = host.get("/v1/nodes");
    CHECK(nodes.status == 503);
    CHECK(nodes.json()->getValue<std::string>("error").rfind("the Docker engine does not answer", 0) == 0);
    std::ofstream(host.gfs + "/fast") << "\n";
  }
  Object::Ptr run = host.wait(id);
  INFO(host.get("/v1/runs/" + std::to_string(id) + "/log").body);
  REQUIRE(state_of(run) == "succeeded");
  CHECK(run->getValue<int>("attempts") == 2);
  CHECK(slurp(run->getArray("outputs")->getElement<std::string>(0)) == "survives\n");
  CHECK(c.count_lines_in_containers("/tmp/runs") == 2);
  CHECK(host.get("/v1/nodes").status == 200);
}

TEST_CASE("the service on the Swarm: a run's call computed as a fleet job, the Swarm's nodes in /v1/nodes",
          "[docker][swarm][service]") {
  Computation c("", copy_exec("echo \"ran on $(hostname)\"\n"), copy_files());
  ServiceHost host;
  host.more_conf = "swarm = true\n";
  host.more_host_conf = "registry = \"" + swarm_setting("CE_SWARM_REGISTRY") + "\"\n";
  host.give(c.path());
  std::string text = host.input("text.txt", "on the fleet\n");
  host.start();
  std::int64_t id = host.submit(run_body(c.path(), {text}));
  Object::Ptr run = host.wait(id, 300);
  INFO(host.get("/v1/runs/" + std::to_string(id) + "/log?call=0").body);
  REQUIRE(state_of(run) == "succeeded");
  Object::Ptr report = run->getArray("calls")->getObject(0)->getObject("report");
  CHECK(report->getValue<std::string>("outcome") == "computed");
  std::string node = report->getObject("fleet")->getValue<std::string>("node");
  CHECK_FALSE(node.empty());
  CHECK(host.get("/v1/runs/" + std::to_string(id) + "/log?call=0").body.find("ran on ") != std::string::npos);
  CHECK(slurp(run->getArray("outputs")->getElement<std::string>(0)) == "on the fleet\n");
  Object::Ptr nodes = host.get("/v1/nodes").json();
  CHECK(nodes->getValue<std::string>("kind") == "swarm");
  CHECK(nodes->getArray("nodes")->size() == 3);
  CHECK(nodes->get("max_calls").isEmpty());
  // Answered from the GFS: no job.
  std::int64_t again = host.submit(run_body(c.path(), {text}));
  CHECK(host.wait(again)->getArray("calls")->getObject(0)->getValue<std::string>("state") == "reused");
}
