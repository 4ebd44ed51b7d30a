// The job service without an engine: its settings and tokens, the requests
// it takes (read strictly), its store.
#include <catch2/catch.hpp>

#include <Poco/JSON/Parser.h>
#include <boost/filesystem.hpp>
#include <fstream>
#include <sys/stat.h>

#include "runner/docker_conf.h"
#include "runner/service/api.h"
#include "runner/service/service_conf.h"
#include "runner/service/store.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using namespace ce::runner::service;
using ce::test::TempDir;

namespace {

// The ConfigError's message `parse` throws, or "no error".
template <class Parse>
std::string config_error(const std::string& text, Parse parse) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}
std::string conf_error(const std::string& text) {
  return config_error(text, [](const std::string& t) { parse_service_conf(t, "service.conf"); });
}
std::string tokens_error(const std::string& text) {
  return config_error(text, [](const std::string& t) { parse_tokens(t, "tokens"); });
}

// The status and message of the ApiError a request body gets.
std::pair<int, std::string> refusal(const std::string& body, std::size_t max_upload = 1 << 20) {
  try {
    parse_run_request(body, max_upload);
  } catch (const ApiError& e) {
    return {e.status(), e.what()};
  }
  return {0, "accepted"};
}

void write(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

}  // namespace

TEST_CASE("service.conf: every key read, each mistake at its line and column", "[service]") {
  ServiceConf c = parse_service_conf(R"(listen = "127.0.0.1:7171"
state = "/srv/ce/state/"
repository_roots = ["/srv/git", "/home"]
input_roots = ["/srv/data"]
max_calls = 3
max_body = "2m"
public_reads = false

[[repository]]
name = "wordfreq"
path = "/srv/git/wordfreq"
user = "nobody"
refs = ["refs/heads/main"]
[[repository.target]]
path = ""
inputs = ["in/text.txt"]
[[repository.target]]
path = "tasks/stats"
)",
                                     "service.conf");
  CHECK(c.listen == "127.0.0.1:7171");
  CHECK(c.state == "/srv/ce/state");
  CHECK(c.repository_roots == std::vector<std::string>{"/srv/git", "/home"});
  CHECK(c.max_calls == 3);
  CHECK(c.max_body_bytes == 2 << 20);
  CHECK(c.public_reads == false);
  REQUIRE(c.repositories.size() == 1);
  CHECK(c.repositories[0].refs == std::vector<std::string>{"refs/heads/main"});
  REQUIRE(c.repositories[0].targets.size() == 2);
  CHECK(c.repositories[0].targets[0].path.empty());
  CHECK(c.repositories[0].targets[0].inputs == std::vector<std::string>{"in/text.txt"});
  CHECK(c.repositories[0].targets[1].path == "tasks/stats");

  CHECK(conf_error("listne = \"127.0.0.1:1\"\n") ==
        "service.conf:1:1: unknown key 'listne'; did you mean 'listen'?");
  CHECK(conf_error("\nlisten = \"localhost:7070\"\n").rfind("service.conf:2:10: 'localhost:7070': the address must be", 0) == 0);
  CHECK(conf_error("max_calls = \"8\"\n").rfind("service.conf:1:13: 'max_calls' must be an integer", 0) == 0);
  CHECK(conf_error("state = \"var/lib\"\n").rfind("service.conf:1:9: 'state' holds \"var/lib\", not an absolute path", 0) == 0);
  CHECK(conf_error("repository_roots = [\"/srv/../etc\"]\n").find("which has a '..' part") != std::string::npos);
  CHECK(conf_error("[[repository]]\nname = \"x\"\npath = \"/srv/x\"\nuser = \"root\"\n")
            .rfind("service.conf:1:1: repository 'x': its runs would run as root", 0) == 0);
  CHECK(conf_error("[[repository]]\nname = \"x\"\n").rfind("service.conf:1:1: a [[repository]] needs name, path and user", 0) == 0);
  CHECK(conf_error("[[repository]]\nname = \"x\"\npath = \"/a\"\nuser = \"u\"\n[[repository.target]]\npath = \"../up\"\n")
            .find("'repository.target.path' holds \"../up\", which has a '..' part") != std::string::npos);
  CHECK(conf_error("[[repository]]\nnme = \"x\"\n").find("unknown key 'nme'; did you mean 'name'?") != std::string::npos);
}

TEST_CASE("service listen addresses: loopback told apart, host names refused", "[service]") {
  CHECK(parse_listen("127.0.0.1:7070").loopback);
  CHECK(parse_listen("[::1]:0").loopback);
  CHECK_FALSE(parse_listen("0.0.0.0:7070").loopback);
  CHECK_FALSE(parse_listen("[::]:80").loopback);
  CHECK_THROWS_WITH(parse_listen("localhost:80"), Catch::Contains("not a host name"));
  CHECK_THROWS_WITH(parse_listen("127.0.0.1:99999"), Catch::Contains("from 0 to 65535"));
  CHECK_THROWS_WITH(parse_listen("127.0.0.1"), Catch::Contains("not ADDRESS:PORT"));
}

TEST_CASE("service tokens: USER TOKEN lines, never root, each token once", "[service]") {
  Tokens t = parse_tokens("# comment\nnobody 0123456789abcdef0123456789abcdef\n\n  daemon\tabcdefghijklmnopqrstuvwxyz012345  # x\n",
                          "tokens");
  CHECK(t.user("0123456789abcdef0123456789abcdef") == std::optional<std::string>("nobody"));
  CHECK(t.user("abcdefghijklmnopqrstuvwxyz012345") == std::optional<std::string>("daemon"));
  CHECK_FALSE(t.user("0123456789abcdef0123456789abcdeF").has_value());
  CHECK_FALSE(t.user("").has_value());
  CHECK(t.users.at("nobody").uid == 65534);
  CHECK(tokens_error("nobody short\n") == "tokens:1: the token is 5 characters long; use at least 24 (e.g. openssl rand -hex 24)");
  CHECK(tokens_error("root 0123456789abcdef0123456789abcdef\n").find("never runs calls as root") != std::string::npos);
  CHECK(tokens_error("\nnobody 0123456789abcdef0123456789abcdef extra\n") == "tokens:2: a line is USER TOKEN (two words), then nothing");
  CHECK(tokens_error("ce-run-no-such-user 0123456789abcdef0123456789abcdef\n").rfind("tokens:1: no user 'ce-run-no-such-user'", 0) == 0);
  CHECK(tokens_error("nobody 0123456789abcdef0123456789abcdef\ndaemon 0123456789abcdef0123456789abcdef\n") ==
        "tokens:2: this token is on an earlier line too; each token stands for one user");
  CHECK(tokens_error("nobody 0123456789abcdef0123456789abcde\"\n").find("letters, digits") != std::string::npos);
}

TEST_CASE("the tokens file is refused unless root alone can read it", "[service]") {
  TempDir dir;
  ::chmod(dir.str().c_str(), 0755);
  std::string path = dir.str() + "/tokens";
  CHECK_FALSE(load_tokens(path).has_value());  // none: the service takes no run
  write(path, "nobody 0123456789abcdef0123456789abcdef\n", 0640);
  CHECK_THROWS_WITH(load_tokens(path), Catch::Contains("readable by group or others (mode 0640), and it holds secrets"));
  ::chmod(path.c_str(), 0600);
  REQUIRE(load_tokens(path).has_value());
  CHECK(load_tokens(path)->user("0123456789abcdef0123456789abcdef") == std::optional<std::string>("nobody"));
  ::chmod(dir.str().c_str(), 0777);
  CHECK_THROWS_WITH(load_tokens(path), Catch::Contains("its directory"));
}

TEST_CASE("POST /v1/runs bodies: read strictly, each mistake named with its place", "[service]") {
  RunSpec s = parse_run_request(R"({"repository": "/srv/git/r", "path": "./tasks//stats/", "branch": "main",
    "inputs": ["in/a.txt", {"name": "b.txt", "content": "bee"}, {"name": "c.bin", "content_base64": "AAEC/w=="}],
    "jobs": 3, "fail_fast": true})",
                                1024);
  CHECK(s.repository == "/srv/git/r");
  CHECK(s.path == "tasks/stats");
  CHECK(s.branch == "main");
  REQUIRE(s.inputs.size() == 3);
  CHECK(s.inputs[0].path == "in/a.txt");
  CHECK(s.inputs[1].name == "b.txt");
  CHECK(s.inputs[1].content == "bee");
  CHECK(s.inputs[2].content == std::string("\x00\x01\x02\xff", 4));
  CHECK(s.jobs == 3);
  CHECK(s.fail_fast);
  // What the store keeps reads back the same (uploads are paths by then).
  RunSpec back = run_spec_from_json(run_spec_json(parse_run_request(R"({"repository": "/r", "inputs": ["x"], "commit": "abcd"})", 0)));
  CHECK(back.repository == "/r");
  CHECK(back.commit == "abcd");
  CHECK(back.inputs.size() == 1);

  using R = std::pair<int, std::string>;
  CHECK(refusal("") == R{400, "the request has no body; it takes a JSON object: {\"repository\": \"/srv/git/wordfreq\", "
                              "\"path\": \"examples/wordfreq\", \"inputs\": [\"inputs/text.txt\"]}"});
  CHECK(refusal("{\"repository\": ").first == 400);
  CHECK(refusal("{\"repository\": ").second.rfind("the body is not JSON", 0) == 0);
  CHECK(refusal("[1]").second.rfind("the body must be a JSON object", 0) == 0);
  CHECK(refusal(R"({"repository": "/r", "input": []})").second ==
        "unknown field 'input' in the request; it takes repository, path, commit, branch, inputs, jobs, fail_fast, allow_dirty");
  CHECK(refusal(R"({"repository": 5})").second == "$.repository must be a string, not a number");
  CHECK(refusal(R"({"path": "x"})").second.rfind("$.repository is missing", 0) == 0);
  CHECK(refusal(R"({"repository": "srv/r"})").second == "$.repository must be an absolute path, not \"srv/r\"");
  CHECK(refusal(R"({"repository": "/srv/../etc"})").second == "$.repository must not have a '..' part");
  CHECK(refusal(R"({"repository": "/r", "path": "a/../../b"})").second ==
        "$.path must not have a '..' part: it stays in the repository");
  CHECK(refusal(R"({"repository": "/r", "path": "/etc"})").second.rfind("$.path is a directory in the repository", 0) == 0);
  CHECK(refusal(R"({"repository": "/r", "commit": "xyz"})").second ==
        "$.commit must be a commit ID (4 to 40 hex digits), not \"xyz\"");
  CHECK(refusal(R"({"repository": "/r", "commit": "abcd", "branch": "main"})").second == "give $.commit or $.branch, not both");
  CHECK(refusal(R"({"repository": "/r", "branch": "a..b"})").second == "$.branch is not a branch name: \"a..b\"");
  CHECK(refusal(R"({"repository": "/r", "jobs": 0})").second == "$.jobs must be an integer from 1 to 4096");
  CHECK(refusal(R"({"repository": "/r", "jobs": 1.5})").second == "$.jobs must be an integer from 1 to 4096");
  CHECK(refusal(R"({"repository": "/r", "jobs": true})").second == "$.jobs must be an integer, not a boolean");
  CHECK(refusal(R"({"repository": "/r", "fail_fast": 1})").second == "$.fail_fast must be true or false, not a number");
  CHECK(refusal(R"({"repository": "/r", "inputs": "a"})").second == "$.inputs must be an array, not a string");
  CHECK(refusal(R"({"repository": "/r", "inputs": ["a", 3]})").second ==
        "$.inputs[1] must be a path (a string) or an upload {\"name\": ..., \"content\": ...}, not a number");
  CHECK(refusal(R"({"repository": "/r", "inputs": ["../../etc/shadow"]})").second ==
        "$.inputs[0] has a '..' part: \"../../etc/shadow\"");
  CHECK(refusal(R"({"repository": "/r", "inputs": [{"name": "../x", "content": ""}]})").second.rfind(
            "$.inputs[0].name must be a file name", 0) == 0);
  CHECK(refusal(R"({"repository": "/r", "inputs": [{"name": "x", "content": "", "mode": 7}]})").second ==
        "unknown field 'mode' in $.inputs[0]; it takes name, content, content_base64");
  CHECK(refusal(R"({"repository": "/r", "inputs": [{"name": "x"}]})").second ==
        "$.inputs[0] needs \"content\" (text) or \"content_base64\", one of them");
  CHECK(refusal(R"({"repository": "/r", "inputs": [{"name": "x", "content_base64": "a*b"}]})").second ==
        "$.inputs[0].content_base64 is not base64 (it holds '*')");
  CHECK(refusal(R"({"repository": "/r", "inputs": [{"name": "x", "content": "12345"}]})", 4) ==
        R{413, "the uploaded inputs are larger than 4 bytes; put large inputs in the GFS and name their paths"});
  CHECK(refusal("{\"repository\": \"/r\\u0000x\"}").second == "$.repository holds a NUL character");
  CHECK(refusal(std::string(100000, '[') + std::string(100000, ']')).second ==
        "the body nests deeper than 16 levels; no request of this API does");
  CHECK(refusal("{\"repository\": \"/r\"} trailing").first == 400);
}

TEST_CASE("commit notifications and query strings: read strictly", "[service]") {
  CommitHook h = parse_commit_hook(R"({"repository": "wordfreq", "ref": "main", "commit": "0123456789abcdef0123456789abcdef01234567"})");
  CHECK(h.ref == "refs/heads/main");
  CHECK_THROWS_WITH(parse_commit_hook(R"({"repository": "w", "ref": "main", "commit": "0123"})"),
                    "$.commit must be the full commit ID (40 hex digits), not \"0123\"");
  CHECK_THROWS_WITH(parse_commit_hook(R"({"repository": "w", "commit": "0123456789abcdef0123456789abcdef01234567"})"),
                    Catch::StartsWith("$.ref is missing"));
  CHECK_THROWS_WITH(parse_commit_hook(R"({"repository": "w", "ref": "x", "commit": "0123456789abcdef0123456789abcdef01234567", "before": "x"})"),
                    "unknown field 'before' in the notification; it takes repository, ref, commit");

  auto q = parse_query("state=running&repository=%2Fsrv%2Fgit%2Fr&limit=5", {"state", "repository", "limit"});
  CHECK(q["repository"] == "/srv/git/r");
  CHECK(query_integer(q, "limit", 50, 1000) == 5);
  CHECK(query_integer(q, "before", 7, 1000) == 7);
  CHECK_THROWS_WITH(parse_query("stat=x", {"state"}), "unknown query parameter 'stat'; this takes state");
  CHECK_THROWS_WITH(parse_query("state=a&state=b", {"state"}), "the query parameter 'state' is given twice");
  CHECK_THROWS_WITH(query_integer(parse_query("limit=-1", {"limit"}), "limit", 50, 1000),
                    "the query parameter 'limit' must be a whole number, not '-1'");
  CHECK_THROWS_WITH(query_integer(parse_query("limit=5000", {"limit"}), "limit", 50, 1000),
                    "the query parameter 'limit' must be at most 1000");
}

TEST_CASE("the service's store keeps runs and calls across a reopening", "[service]") {
  TempDir dir;
  std::string db = dir.str() + "/runs.sqlite";
  std::int64_t first = 0;
  {
    Store store(db);
    std::vector<RunRecord> runs(3);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      runs[i].user = "nobody";
      runs[i].kind = "computation";
      runs[i].repository = i == 2 ? "/srv/b" : "/srv/a";
      runs[i].request = "{}";
      runs[i].submitted = 1000.5 + static_cast<double>(i);
    }
    store.add_runs(runs);
    first = runs[0].id;
    CHECK(runs[1].id == first + 1);
    runs[1].state = run_state::running;
    runs[1].attempts = 1;
    store.update_run(runs[1]);
    CallRecord c;
    c.index = 1;
    c.node = "workflow";
    c.needs = {0, 3};
    c.report = "{\"version\": 1}";
    store.put_call(runs[1].id, c);
    c.state = "computed";
    store.put_call(runs[1].id, c);  // replaced, not added
  }
  Store store(db);
  auto r = store.run(first + 1);
  REQUIRE(r);
  CHECK(r->state == "running");
  CHECK(r->attempts == 1);
  CHECK(r->submitted == 1001.5);
  REQUIRE(r->calls.size() == 1);
  CHECK(r->calls[0].state == "computed");
  CHECK(r->calls[0].needs == std::vector<int>{0, 3});
  CHECK(store.unfinished().size() == 3);
  CHECK(store.count_by_state()["queued"] == 2);
  CHECK(store.count_by_state()["succeeded"] == 0);
  RunFilter f;
  f.limit = 2;
  auto page = store.runs(f);
  REQUIRE(page.size() == 2);
  CHECK(page[0].id == first + 2);
  f.before = page[1].id;
  CHECK(store.runs(f).size() == 1);
  RunFilter by_repo;
  by_repo.repository = "/srv/b";
  CHECK(store.runs(by_repo).size() == 1);
  CHECK_FALSE(store.run(first + 99));
  Poco::JSON::Object::Ptr detail = run_detail(*r);
  CHECK(detail->getArray("calls")->getObject(0)->getObject("report")->getValue<int>("version") == 1);
  CHECK(detail->getValue<std::string>("log") == "/v1/runs/" + std::to_string(first + 1) + "/log");
}

TEST_CASE("examples/ce-run.service is a unit systemd accepts, running ce-run serve", "[service]") {
  TempDir dir;
  std::ifstream in(std::string(CE_SOURCE_DIR) + "/examples/ce-run.service");
  std::string unit((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(unit.find("ExecStart=/usr/local/bin/ce-run serve\n") != std::string::npos);
  // The installed path, here the built binary's.
  unit.replace(unit.find("/usr/local/bin/ce-run"), 21, CE_RUN_BINARY);
  std::string path = dir.str() + "/ce-run.service";
  std::ofstream(path) << unit;
  std::string command = "systemd-analyze verify '" + path + "' 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p);
  std::string said;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, p)) said += buffer;
  int status = ::pclose(p);
  INFO(said);
  CHECK(status == 0);
  CHECK(said.empty());
}
