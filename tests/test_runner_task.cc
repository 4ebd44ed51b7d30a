// Tasks (`ce-run TASKDIR`) end to end: the built binary on CompEval tasks
// in fresh Git repositories. Checking a task and -n need no engine
// (NoEngine); evaluating one runs against the real engine ([docker]).
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <boost/filesystem.hpp>
#include <csignal>
#include <fstream>
#include <optional>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <thread>

#include "runner/gfs.h"
#include "support/ce_run.h"
#include "support/computation.h"
#include "support/task.h"

using namespace ce::test;
namespace fs = boost::filesystem;

namespace {


Poco::JSON::Object::Ptr read_json(const std::string& path) {
  Poco::JSON::Parser parser;
  return parser.parse(slurp(path)).extract<Poco::JSON::Object::Ptr>();
}

// The status of each distinct call in a report, "computation:status" in
// the report's order, and the count of each status.
std::vector<std::string> statuses(const Poco::JSON::Object::Ptr& report) {
  std::vector<std::string> out;
  auto calls = report->getArray("calls");
  for (std::size_t i = 0; i < calls->size(); ++i) {
    auto c = calls->getObject(static_cast<unsigned>(i));
    out.push_back(c->getObject("computation")->getValue<std::string>("name") + ":" + c->getValue<std::string>("status"));
  }
  return out;
}
std::size_t count_status(const Poco::JSON::Object::Ptr& report, const std::string& status) {
  return report->getObject("counts")->getValue<std::size_t>(status);
}

// Lines of `text` that contain `needle`.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

// The diamond: root = join(x, y), x = join(upper(data), FILE(lit/sep.txt)),
// y = join(split(upper(data)) reversed). upper(data) appears twice.
struct Diamond {
  TaskDir t;
  std::string data;
  Diamond() {
    t.computation("upper", {"text"}, {"up"}, "tr a-z A-Z < \"$1\" > \"$2\"");
    t.computation("split", {"text"}, {"first", "second"},
                  "{ printf 'first:'; cat \"$1\"; } > \"$2\"; { printf 'second:'; cat \"$1\"; } > \"$3\"");
    t.computation("join", {"a", "b"}, {"joined"}, "cat \"$1\" \"$2\" > \"$3\"");
    t.inputs({"data"});
    t.node("workflow", "computation", "join");
    t.node("workflow/inputs/00-x", "computation", "join");
    t.node("workflow/inputs/00-x/inputs/00-u", "computation", "upper");
    t.node("workflow/inputs/00-x/inputs/00-u/inputs/00-src", "input", "data");
    t.node("workflow/inputs/00-x/inputs/01-sep", "literal", "lit/sep.txt");
    t.node("workflow/inputs/01-y", "computation", "join");
    t.node("workflow/inputs/01-y/inputs/00_01-sp", "computation", "split", "1\n0\n");
    t.node("workflow/inputs/01-y/inputs/00_01-sp/inputs/00-t", "computation", "upper");
    t.node("workflow/inputs/01-y/inputs/00_01-sp/inputs/00-t/inputs/00-src", "input", "data");
    t.commit();
    fs::create_directories(t.gfs.path() / "lit");
    std::ofstream((t.gfs.path() / "lit/sep.txt").string()) << "--\n";
    data = t.data("data.txt", "hello\n");
  }
  static constexpr const char* expected = "HELLO\n--\nsecond:HELLO\nfirst:HELLO\n";
  // The task's one output, from "Task outputs are:".
  static std::string output(const std::string& out) {
    auto at = out.find("Task outputs are:\n");
    REQUIRE(at != std::string::npos);
    std::string rest = out.substr(at + 18);
    auto start = rest.find_first_not_of(' ');
    return rest.substr(start, rest.find('\n') - start);
  }
};

}  // namespace

// The computations and inputs of the broken tasks below.
static void split_and_join(TaskDir& t) {
  t.computation("split", {"text"}, {"first", "second"}, "true");
  t.computation("join", {"x", "y"}, {"joined"}, "true");
  t.inputs({"data"});
}

TEST_CASE("every problem of a task is reported at once with its node's path, and nothing runs", "[task]") {
  NoEngine no_engine;
  TaskDir t;
  split_and_join(t);
  // One task with most problems ...
  t.node("workflow", "computation", "join");
  t.node("workflow/inputs/00-a", "computation", "split", "5\n");
  t.node("workflow/inputs/00-a/inputs/00-x", "input", "zz");
  t.node("workflow/inputs/01-b", "computation", "nosuch");
  t.file("workflow/inputs/01-b/inputs/bad/kind", "input\n");
  t.file("workflow/inputs/01-b/inputs/00-p/value", "data\n");
  t.node("workflow/inputs/01-b/inputs/00-q", "compute", "data");
  t.node("workflow/inputs/01-b/inputs/02-r", "literal", "lit/none");
  t.commit();
  fs::create_directories(t.gfs.path() / "lit");
  auto r = t.run({t.path(), t.data("d", "d")});
  INFO(r.err);
  CHECK(r.exit_code == 125);
  CHECK(r.out.empty());
  std::string w = t.path() + "/workflow";
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/00-a/outputs:1:1: output 5 is out of range: the computation split "
                                        "has 2 outputs (0 = first, 1 = second)"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/00-a/inputs/00-x/value:1:1: 'zz' is not one of the task's inputs (" +
                                    t.path() + "/inputs: data)"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/value:1:1: no computation 'nosuch' in " + t.path() +
                                    "/computations (there are: join, split)"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/inputs/bad: not a sub-node's name; name it NN-label"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/inputs/00-p/kind: missing; write computation, input or literal"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/inputs/00-q: fills argument slot 0, which " + w +
                                    "/inputs/01-b/inputs/00-p fills too"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/inputs/00-q/kind:1:1: unknown kind 'compute'"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/inputs: argument slot 1 is not filled"));
  CHECK_THAT(r.err, Catch::Contains(w + "/inputs/01-b/inputs/02-r/value:1:1: the literal 'lit/none' is not in the GFS"));
  CHECK_THAT(r.err, Catch::Contains("the task " + t.path() + " has 9 problems (above); nothing was run"));
  CHECK(files_below(t.gfs.str()) == std::vector<std::string>{"lit"});

  // ... and one with the rest: a slot count the computation does not take,
  // a selection that does not fill its slots, a missing value, a link loop.
  TaskDir u;
  split_and_join(u);
  u.node("workflow", "computation", "join");
  u.node("workflow/inputs/00_01-s", "computation", "split", "0\n");
  u.node("workflow/inputs/00_01-s/inputs/00-u", "input", "data");
  u.node("workflow/inputs/02-w", "computation", "split");
  u.file("workflow/inputs/02-w/inputs/00-v/kind", "input\n");
  u.commit();
  fs::create_symlink("..", u.dir.path() / "workflow/inputs/02-w/inputs/01-loop");
  auto s = u.run({u.path(), u.data("d", "d")});
  INFO(s.err);
  CHECK(s.exit_code == 125);
  std::string v = u.path() + "/workflow/inputs/00_01-s", x = u.path() + "/workflow/inputs/02-w";
  CHECK_THAT(s.err, Catch::Contains(u.path() + "/workflow: the computation join takes 2 inputs (x, y), but the "
                                               "sub-nodes in workflow/inputs fill 3 slots"));
  CHECK_THAT(s.err, Catch::Contains(v + ": fills slots 0 to 1 (2 files) but passes up 1 (select as many outputs in "
                                        "its outputs file)"));
  CHECK_THAT(s.err, Catch::Contains(x + "/inputs/00-v/value: missing"));
  CHECK_THAT(s.err, Catch::Contains(x + "/inputs/01-loop: a symbolic link loop: it is workflow/inputs/02-w again"));

  // The task's inputs: the arity message of a call.
  Diamond d;
  auto arity = d.t.run({d.t.path()});
  CHECK(arity.exit_code == 125);
  CHECK_THAT(arity.err, Catch::Contains(d.t.path() + ": expected 1 input (data), got 0"));
}

TEST_CASE("sym prints the task as CompEval's ce-sym did, from any working directory", "[task]") {
  NoEngine no_engine;
  Diamond d;
  auto r = run_ce({"sym", d.t.path()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "Inputs: 'data'\n"
                 "(join (join (upper INPUT('data'))[0] FILE('lit/sep.txt'))[0] "
                 "(join (split (upper INPUT('data'))[0])[1,0])[0])\n");

  // A sub-node may be a symbolic link to another node's directory, and a
  // node's file a link to a file (not loops: read as what they point to).
  fs::path y = d.t.dir.path() / "workflow/inputs/01-y/inputs/00_01-sp/inputs";
  fs::remove_all(y / "00-t");
  fs::create_directory_symlink("../../../../00-x/inputs/00-u", y / "00-t");
  fs::path x = d.t.dir.path() / "workflow/inputs/00-x/inputs/01-sep";
  fs::rename(x / "value", d.t.dir.path() / "sep-value");
  fs::create_symlink("../../../../../sep-value", x / "value");
  auto linked = run_ce({"sym", d.t.path()});
  INFO(linked.err);
  CHECK(linked.exit_code == 0);
  CHECK(linked.out == r.out);
}

TEST_CASE("a dry run (-n) of a task runs nothing, writes nothing in the GFS and exits 3 while something would be computed", "[task]") {
  NoEngine no_engine;
  Diamond d;
  auto before = files_below(d.t.gfs.str());
  auto r = d.t.run({"-n", d.t.path(), d.data});
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(files_below(d.t.gfs.str()) == before);
  std::string gfs = d.t.gfs.str();
  auto sha = ce::runner::sha1_file(d.data);
  // upper's name is known (its input exists); the joins' depend on outputs
  // not computed yet.
  CHECK_THAT(r.out, Catch::Contains("                src: INPUT('data') " + gfs + "/tinputs/" + sha.substr(0, 2) + "/" +
                                    sha.substr(2, 10) + " MISSING\n            upper (u)\n            `> up: " + gfs +
                                    "/c_" + d.t.full_name("upper") + "/"));
  // x = join(upper, sep): "???" for upper's output, the literal's hash.
  auto sep = ce::runner::sha1_file(gfs + "/lit/sep.txt").substr(0, 12);
  CHECK(lines_with(r.out, "/00/???_" + sep + " MISSING").size() == 1);
  CHECK_THAT(r.out, Catch::Contains("    join (TASK)\n    `> joined: " + gfs + "/c_" + d.t.full_name("join")));
  CHECK_THAT(r.out, Catch::Contains("/00/???_??? MISSING\n\n    Task outputs are:\n"));
  CHECK(r.out.find("computing") == std::string::npos);

  // --gfs and GFSDIR relative to the working directory (a GFS cached in CI's
  // checkout), from another directory than the task's.
  fs::path gfs_path = d.t.gfs.path();
  std::string in_parent = "cd '" + gfs_path.parent_path().string() + "' && ";
  std::string tail = " '" + d.t.path() + "' '" + d.data + "' > /dev/null 2>&1";
  int by_option = std::system((in_parent + "'" + ce_run_binary() + "' -n --gfs " + gfs_path.filename().string() +
                               tail).c_str());
  int by_variable = std::system((in_parent + "GFSDIR=" + gfs_path.filename().string() + " '" + ce_run_binary() +
                                 "' -n" + tail).c_str());
  CHECK(WEXITSTATUS(by_option) == 3);
  CHECK(WEXITSTATUS(by_variable) == 3);
  CHECK(files_below(d.t.gfs.str()) == before);

  // A run with no engine to run on: ce-run's own failure, 125, not 1.
  auto run = d.t.run({d.t.path(), d.data});
  CHECK(run.exit_code == 125);
  CHECK_THAT(run.err, Catch::Contains("/nonexistent/docker.sock"));
}

TEST_CASE("a task runs each distinct call once, passes every output to exec and applies the selection after",
          "[docker][task]") {
  Diamond d;
  // A single call's result is reused by the task ...
  auto single = run_ce({"--gfs", d.t.gfs.str(), d.t.path() + "/computations/upper", d.data});
  REQUIRE(single.exit_code == 0);
  std::string report = d.t.input_dir.str() + "/report.json";
  auto r = d.t.run({"-j", "4", "--report", report, d.t.path(), d.data});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string out = Diamond::output(r.out);
  CHECK(slurp(out) == Diamond::expected);
  CHECK(d.t.runs("upper") == 1);
  CHECK(d.t.runs("split") == 1);  // given both outputs, though the node selects them reversed
  CHECK(d.t.runs("join") == 3);
  auto json = read_json(report);
  CHECK(json->getValue<bool>("complete"));
  CHECK(count_status(json, "reused") == 1);
  CHECK(count_status(json, "computed") == 4);
  auto calls = json->getArray("calls");
  REQUIRE(calls->size() == 5);
  auto upper = calls->getObject(0);
  CHECK(upper->getObject("computation")->getValue<std::string>("name") == d.t.full_name("upper"));
  CHECK(upper->getArray("nodes")->size() == 2);
  CHECK(upper->getValue<std::string>("status") == "reused");
  auto split = calls->getObject(1);
  CHECK(split->getArray("outputs")->getObject(0)->getValue<std::string>("sha256").size() == 64);
  CHECK(split->getValue<std::string>("outcome") == "computed");
  CHECK(split->getArray("inputs")->getObject(0)->getValue<std::string>("sha1").size() == 40);
  // CompEval's lines: sub-nodes first, four spaces a level, the selection's
  // outputs in its order.
  std::string gfs = d.t.gfs.str();
  CHECK_THAT(r.out, Catch::Contains("            upper (u)\n            `> up: " + gfs + "/c_" + d.t.full_name("upper")));
  auto sp = lines_with(r.out, "`> first:");
  REQUIRE(sp.size() == 1);
  CHECK_THAT(r.out, Catch::Contains("            split (sp)\n            `> second: "));
  CHECK(sp[0].find("/01/") == std::string::npos);
  CHECK_THAT(r.out, Catch::Contains("    join (TASK)\n    `> joined: " + out + " MISSING\n    `* computing...\n"));

  // ... and the task's results by single calls and by the next run: all reused.
  auto again = d.t.run({d.t.path(), d.data});
  CHECK(again.exit_code == 0);
  CHECK(lines_with(again.out, "computing").empty());
  CHECK_THAT(again.out, Catch::Contains("    `> joined: " + out + " ok\n"));
  auto single_again = run_ce({"--gfs", d.t.gfs.str(), d.t.path() + "/computations/upper", d.data});
  CHECK_THAT(single_again.out, Catch::EndsWith(" ok\n"));
  CHECK(d.t.runs("join") == 3);
  // -n now has nothing to compute: 0.
  CHECK(d.t.run({"-n", d.t.path(), d.data}).exit_code == 0);
}

TEST_CASE("a failed call skips what needs it, the other branches are filed, exit 1, with its last lines", "[docker][task]") {
  TaskDir t;
  t.computation("upper", {"text"}, {"up"}, "tr a-z A-Z < \"$1\" > \"$2\"");
  t.computation("fail", {"text"}, {"out"}, "for i in $(seq 1 15); do echo \"problem $i\" >&2; done; exit 3");
  t.computation("join", {"a", "b"}, {"joined"}, "cat \"$1\" \"$2\" > \"$3\"");
  t.inputs({"data"});
  t.node("workflow", "computation", "join");
  t.node("workflow/inputs/00-bad", "computation", "fail");
  t.node("workflow/inputs/00-bad/inputs/00-src", "input", "data");
  t.node("workflow/inputs/01-good", "computation", "upper");
  t.node("workflow/inputs/01-good/inputs/00-src", "input", "data");
  t.commit();
  std::string data = t.data("data.txt", "hello\n");
  std::string report = t.input_dir.str() + "/report.json", junit = t.input_dir.str() + "/junit.xml";

  // --fail-fast with one job: the failure comes first, nothing else starts.
  auto fast = t.run({"-j1", "--fail-fast", "--report", report, t.path(), data});
  INFO(fast.err);
  CHECK(fast.exit_code == 1);
  CHECK(statuses(read_json(report)) ==
        std::vector<std::string>{t.full_name("fail") + ":failed", t.full_name("upper") + ":skipped",
                                 t.full_name("join") + ":skipped"});
  CHECK(t.runs("upper") == 0);

  auto r = t.run({"-j2", "--report", report, "--junit", junit, t.path(), data});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  auto json = read_json(report);
  CHECK(statuses(json) == std::vector<std::string>{t.full_name("fail") + ":failed", t.full_name("upper") + ":computed",
                                                   t.full_name("join") + ":skipped"});
  CHECK_FALSE(json->getValue<bool>("complete"));
  auto calls = json->getArray("calls");
  CHECK(calls->getObject(0)->getValue<int>("exit_code") == 3);
  CHECK(calls->getObject(2)->getValue<std::string>("skipped_because") == "workflow/inputs/00-bad");
  CHECK(t.runs("upper") == 1);
  CHECK(slurp(calls->getObject(1)->getArray("outputs")->getObject(0)->getValue<std::string>("path")) == "HELLO\n");
  CHECK_THAT(r.err, Catch::Contains("ce-run: error: workflow/inputs/00-bad (fail): "));
  CHECK_THAT(r.err, Catch::Contains("exited with 3"));
  CHECK_THAT(r.err, Catch::Contains("    | problem 6\n"));
  CHECK_THAT(r.err, Catch::Contains("    | problem 15\n"));
  CHECK(r.err.find("| problem 5\n") == std::string::npos);
  CHECK_THAT(r.out, Catch::Contains("    `* skipped: a call it needs failed\n"));

  // The JUnit file is valid for the schema GitLab's reader takes.
  std::string check = "xmllint --noout --schema '" + std::string(CE_SOURCE_DIR) + "/tests/data/junit-10.xsd' '" +
                      junit + "' 2>&1";
  CHECK(std::system(check.c_str()) == 0);
  std::string xml = slurp(junit);
  CHECK_THAT(xml, Catch::Contains("<testcase classname=\"" + t.full_name("fail") +
                                  "\" name=\"workflow/inputs/00-bad\""));
  CHECK_THAT(xml, Catch::Contains("<failure type=\"command_failed\" message=\"exit code 3 (command_failed)\">"));
  CHECK_THAT(xml, Catch::Contains("problem 15"));
  CHECK_THAT(xml, Catch::Contains("<skipped message=\"not run: it needs workflow/inputs/00-bad, which failed\"/>"));

  // ce-run log shows all of the failed call's output; graph says failed.
  auto log = t.run({"log", t.path(), "workflow/inputs/00-bad", data});
  CHECK(log.exit_code == 0);
  CHECK_THAT(log.out, Catch::Contains("problem 1\nproblem 2\n"));
  CHECK_THAT(log.out, Catch::Contains("the call's latest run failed"));
  auto graph = t.run({"graph", t.path(), data});
  CHECK(graph.exit_code == 0);
  CHECK_THAT(graph.out, Catch::Contains("fillcolor=salmon, label=\"" + t.full_name("fail") +
                                        "\\nworkflow/inputs/00-bad\\nfailed\""));
  CHECK_THAT(graph.out, Catch::Contains("\\nworkflow/inputs/01-good\\nok\""));
  std::string svg = t.input_dir.str() + "/graph.svg";
  CHECK(t.run({"graph", "-o", svg, t.path(), data}).exit_code == 0);
  CHECK_THAT(slurp(svg), Catch::Contains("<svg"));

  // The failure fixed: only what was missing runs; the good branch is reused.
  t.computation("fail", {"text"}, {"out"}, "cp \"$1\" \"$2\"");
  t.commit();
  auto fixed = t.run({"--report", report, t.path(), data});
  CHECK(fixed.exit_code == 0);
  CHECK(statuses(read_json(report)) == std::vector<std::string>{t.full_name("fail") + ":computed",
                                                                t.full_name("upper") + ":reused",
                                                                t.full_name("join") + ":computed"});
}

TEST_CASE("kill -9 halfway through a task: the rerun computes only what is missing", "[docker][task]") {
  TaskDir t;
  t.computation("upper", {"text"}, {"up"}, "tr a-z A-Z < \"$1\" > \"$2\"");
  // Holds until the test lets it go; writes half its output first.
  t.computation("slow", {"text"}, {"out"},
                "echo half > \"$2\"; touch /tmp/started; while [ ! -e \"$GFSDIR/go\" ]; do sleep 0.1; done; "
                "cat \"$1\" >> \"$2\"");
  t.computation("join", {"a", "b"}, {"joined"}, "cat \"$1\" \"$2\" > \"$3\"");
  t.inputs({"data"});
  t.node("workflow", "computation", "join");
  t.node("workflow/inputs/00-a", "computation", "upper");
  t.node("workflow/inputs/00-a/inputs/00-src", "input", "data");
  t.node("workflow/inputs/01-b", "computation", "slow");
  t.node("workflow/inputs/01-b/inputs/00-src", "input", "data");
  t.commit();
  std::string data = t.data("data.txt", "hello\n");
  int pid = spawn_ce({"--gfs", t.gfs.str(), "-j2", t.path(), data});
  // (A container may be on its way in or out while it is listed: not yet.)
  auto running = [&] {
    try {
      for (const auto& c : t.client.list_containers({{"ce-run.role", "run"},
                                                     {"ce-run.computation", t.full_name("slow")}}))
        if (exists_in_container(t.client, c.id, "/tmp/started")) return true;
    } catch (const std::exception&) {
    }
    return false;
  };
  auto upper_done = [&] {
    auto files = files_below(t.gfs.str());
    return std::any_of(files.begin(), files.end(), [&](const std::string& f) {
      return f.rfind("c_" + t.full_name("upper") + "/", 0) == 0 && f.find("/done/") != std::string::npos;
    });
  };
  REQUIRE(poll_until([&] { return running() && upper_done(); }, 60));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // Nothing of slow is filed: its half-written output never counts.
  auto files = files_below(t.gfs.str());
  CHECK(std::none_of(files.begin(), files.end(), [&](const std::string& f) {
    return f.rfind("c_" + t.full_name("slow") + "/", 0) == 0 && f.find("/00/") != std::string::npos;
  }));
  std::ofstream((t.gfs.path() / "go").string()) << "";
  std::string report = t.input_dir.str() + "/report.json";
  auto r = t.run({"-j2", "--report", report, t.path(), data});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(statuses(read_json(report)) == std::vector<std::string>{t.full_name("upper") + ":reused",
                                                                t.full_name("slow") + ":computed",
                                                                t.full_name("join") + ":computed"});
  CHECK(slurp(Diamond::output(r.out)) == "HELLO\nhalf\nhello\n");
  CHECK(t.runs("upper") == 1);
}

TEST_CASE("two runs of a task at once on one GFS compute each distinct call once between them", "[docker][task]") {
  Diamond d;
  std::vector<std::string> args = {"--gfs", d.t.gfs.str(), "-j2", d.t.path(), d.data};
  std::string err_a = d.t.input_dir.str() + "/a.err", err_b = d.t.input_dir.str() + "/b.err";
  int a = spawn_ce(args, err_a), b = spawn_ce(args, err_b);
  int status_a = 0, status_b = 0;
  ::waitpid(a, &status_a, 0);
  ::waitpid(b, &status_b, 0);
  INFO(slurp(err_a) << slurp(err_b));
  CHECK(WEXITSTATUS(status_a) == 0);
  CHECK(WEXITSTATUS(status_b) == 0);
  CHECK(d.t.runs("upper") == 1);
  CHECK(d.t.runs("split") == 1);
  CHECK(d.t.runs("join") == 3);
  auto r = d.t.run({d.t.path(), d.data});
  CHECK(slurp(Diamond::output(r.out)) == Diamond::expected);
}

TEST_CASE("CI replaying an example task's history recomputes only what each commit changed", "[docker][task]") {
  // examples/tasks/textstats, each computation a repository of its own and a
  // submodule of the task's, on debian:bookworm.
  TempDir repos, gfs;
  std::string make = std::string(CE_SOURCE_DIR) + "/examples/make-repos";
  sh(repos.path(), "'" + make + "' '" + repos.str() + "' textstats");
  fs::path task = repos.path() / "textstats";
  fs::create_directories(gfs.path() / "lit");
  fs::copy_file(task / "literal/stopwords.txt", gfs.path() / "lit/stopwords.txt");
  struct Cleanup {
    fs::path task;
    ~Cleanup() {
      ce::docker::Client client;
      try {
        for (const char* c : {"tokenize", "count", "compare", "report"}) {
          std::string dir = fs::canonical(task / "computations" / c).string();
          for (const auto& found : client.list_containers({{"ce-run.compdir", dir}}, ce::docker::Which::all))
            client.remove_container(found.id, ce::docker::Force::yes);
        }
      } catch (const std::exception&) {
      }
    }
  } cleanup{task};
  const std::string git = "git -c user.name=t -c user.email=t@e -c protocol.file.allow=always ";
  auto head = [&] {
    std::string file = (repos.path() / "head").string();
    sh(task, "git rev-parse HEAD > '" + file + "'");
    return slurp(file).substr(0, 40);
  };
  // A commit of a computation's repository, taken into the task's.
  auto change = [&](const std::string& computation, const std::string& edit) {
    sh(repos.path() / ("textstats-" + computation), edit + " && " + git + "commit -qam change");
    sh(task, git + "submodule update -q --remote computations/" + computation + " && " + git +
                 "commit -qam 'computations/" + computation + " moved on'");
    return head();
  };
  std::vector<std::string> commits = {head()};
  // count breaks ties the other way: its outputs change.
  commits.push_back(change("count", "sed -i 's/-k1,1 *>/-k1,1r >/' exec && grep -q -- '-k1,1r' exec"));
  // Only the workflow: nothing to compute.
  sh(task, "echo 'two texts compared' > workflow/NOTES && " + git + "add -A && " + git + "commit -qm notes");
  commits.push_back(head());
  // A comment in report's exec: report alone.
  commits.push_back(change("report", "echo '# the report' >> exec"));
  // A comment in count's exec: count runs again, its outputs are the same,
  // so nothing downstream does.
  commits.push_back(change("count", "echo '# counted' >> exec"));
  commits.push_back(commits.front());  // back to the first: all of it is there

  using V = std::vector<std::string>;
  const std::vector<V> expected = {
      {"tokenize:computed", "count:computed", "tokenize:computed", "count:computed", "compare:computed",
       "report:computed"},
      {"tokenize:reused", "count:computed", "tokenize:reused", "count:computed", "compare:computed",
       "report:computed"},
      {"tokenize:reused", "count:reused", "tokenize:reused", "count:reused", "compare:reused", "report:reused"},
      {"tokenize:reused", "count:reused", "tokenize:reused", "count:reused", "compare:reused", "report:computed"},
      {"tokenize:reused", "count:computed", "tokenize:reused", "count:computed", "compare:reused", "report:reused"},
      {"tokenize:reused", "count:reused", "tokenize:reused", "count:reused", "compare:reused", "report:reused"},
  };
  std::string report = (repos.path() / "report.json").string();
  for (std::size_t k = 0; k < commits.size(); ++k) {
    sh(task, git + "checkout -q " + commits[k] + " && " + git + "submodule update -q --init");
    auto r = run_ce({"--gfs", gfs.str(), "--report", report, task.string(), (task / "samples/left.txt").string(),
                     (task / "samples/right.txt").string()});
    INFO("commit " << k << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(statuses(read_json(report)) == expected[k]);
    CHECK_THAT(slurp(Diamond::output(r.out)), Catch::StartsWith("Two texts compared\n"));
  }
}

TEST_CASE("a task's commands stop with their timeout and with Ctrl-C, in the container too", "[docker][task]") {
  TaskDir t;
  t.computation("slow", {"text"}, {"out"}, "touch /tmp/started; sleep 30; cp \"$1\" \"$2\"");
  t.computation("upper", {"text"}, {"up"}, "tr a-z A-Z < \"$1\" > \"$2\"");
  t.file("computations/slow/docker.conf", "image = \"busybox:latest\"\nname = \"" + t.full_name("slow") +
                                              "\"\ntimeout = \"1s\"\n");
  t.inputs({"data"});
  t.node("workflow", "computation", "upper");
  t.node("workflow/inputs/00-s", "computation", "slow");
  t.node("workflow/inputs/00-s/inputs/00-src", "input", "data");
  t.commit();
  std::string data = t.data("data.txt", "hello\n");
  std::string report = t.input_dir.str() + "/report.json";
  auto started = std::chrono::steady_clock::now();
  auto r = t.run({"--report", report, t.path(), data});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(r.exit_code == 1);
  CHECK(seconds < 20);
  auto call = read_json(report)->getArray("calls")->getObject(0);
  CHECK(call->getValue<std::string>("outcome") == "timed_out");
  CHECK_THAT(r.err, Catch::Contains("ran longer than docker.conf's timeout (1 s)"));

  // Without the timeout, Ctrl-C: exit 130, and nothing of the command is
  // left running in the container.
  t.file("computations/slow/docker.conf", "image = \"busybox:latest\"\nname = \"" + t.full_name("slow") + "\"\n");
  t.commit();
  auto containers = [&] {
    return t.client.list_containers({{"ce-run.role", "run"}, {"ce-run.computation", t.full_name("slow")}});
  };
  for (const auto& c : containers()) {
    ce::docker::ExecSpec rm;
    rm.cmd = {"rm", "-f", "/tmp/started"};
    t.client.run_exec(c.id, rm, [](ce::docker::StreamKind, std::string_view) {});
  }
  std::string err = t.input_dir.str() + "/err";
  int pid = spawn_ce({"--gfs", t.gfs.str(), t.path(), data}, err);
  REQUIRE(poll_until(
      [&] {
        try {
          for (const auto& c : containers())
            if (exists_in_container(t.client, c.id, "/tmp/started")) return true;
        } catch (const std::exception&) {  // a container on its way in
        }
        return false;
      },
      60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  INFO(slurp(err));
  CHECK(WEXITSTATUS(status) == 130);
  // The supervisor stops the command's tree: no sleep is left.
  CHECK(poll_until(
      [&] {
        for (const auto& c : containers()) {
          ce::docker::ExecSpec ps;
          ps.cmd = {"sh", "-c", "ps | grep -c '[s]leep 30' || true"};
          std::string out;
          t.client.run_exec(c.id, ps, [&](ce::docker::StreamKind, std::string_view b) { out.append(b); });
          if (out.find('0') != 0) return false;
        }
        return true;
      },
      15));
}

TEST_CASE("on a terminal a task shows a status line on stderr, and none in a pipe", "[task]") {
  NoEngine no_engine;
  Diamond d;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string binary = ce_run_binary(), gfs = d.t.gfs.str(), task = d.t.path();
    ::execl(binary.c_str(), binary.c_str(), "-n", "--gfs", gfs.c_str(), task.c_str(), d.data.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string seen;
  char buffer[4096];
  for (int i = 0; i < 200; ++i) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(master, buffer, sizeof buffer);
    if (n <= 0) break;
    seen.append(buffer, static_cast<std::size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  INFO(seen);
  CHECK(WEXITSTATUS(status) == 3);
  CHECK_THAT(seen, Catch::Contains("\r\033[K[ce-run] 0/5 calls done, 0 running, 5 waiting, 0 failed"));
  CHECK_THAT(seen, Catch::Contains("Task outputs are:"));
  // In a pipe (run_ce): no status line.
  auto piped = d.t.run({"-n", d.t.path(), d.data});
  CHECK(piped.err.find("[ce-run]") == std::string::npos);
}
