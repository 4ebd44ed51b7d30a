// The GFS store (runner/gfs.h) without the engine: calls, their inputs,
// promotion from a staging directory, records, verification and the
// collection of results, each case in its own temporary directory.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/gfs.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using ce::test::TempDir;
namespace fs = boost::filesystem;

namespace {

// printf 'alpha\n' | sha1sum, and so on.
const std::string sha1_alpha = "d046cd9b7ffb7661e449683313d41f6fc33e3130";
const std::string sha1_beta = "6c007a14875d53d9bf0ef5a6fc0257c817f0fb83";
const std::string sha256_joined = "e49c81e2d2f84e259d40e2fb8192f3bcd198b355184845d76d8f58807d0d78ee";  // alpha\nbeta\n
const std::string sha256_size = "06e9d52c1720fca412803e3b07c4b228ff113e303f4c7ab94665319d832bbfb7";    // 6\n

const std::string cid = "21e4ed15f503742ce3b6c9e10ee0d929133716fe";
const std::string other_cid = "9b4c80dd24770a25938e69975b9d4e5be0632597";

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path.string(), std::ios::binary | std::ios::trunc) << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path.string(), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string made(const fs::path& path) {
  fs::create_directories(path);
  return fs::canonical(path).string();
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

// A GFS, two inputs and a staging root in one temporary directory; the
// contract of tests/support's pair computation: two inputs, two outputs.
struct Store {
  TempDir dir;
  Gfs gfs{made(dir.path() / "gfs")};
  std::string staging_root = (dir.path() / "staging").string();
  std::string a = made(dir.path() / "data") + "/a.txt", b = (dir.path() / "data" / "b.txt").string();
  CallContract contract{{"first", "second"}, {"joined", "size"}, "/compdir/exec"};
  Invoker root;  // uid 0: inputs are opened in this process

  Store() {
    write_file(a, "alpha\n");
    write_file(b, "beta\n");
  }
  Call call(const std::string& name = "pair", const std::string& id = cid) const {
    return Call(gfs, name, id, contract, {a, b}, root);
  }
  // A staging directory holding the outputs the command would have written
  // (name -> content, "00", "01", ...).
  StagedCall staged(const std::map<std::string, std::string>& outputs) const {
    StagedCall s(staging_root, "container", "call", "0:0");
    for (const auto& [name, content] : outputs) write_file(fs::path(s.host_path()) / name, content);
    return s;
  }
  CallRecord record(const std::string& compdir = "/home/alice/pair", const std::string& host = "vm") const {
    CallRecord r;
    r.start = "2026-11-23T12:49:20Z";
    r.end = "2026-11-23T12:49:21Z";
    r.seconds = 1.25;
    r.computation_id = cid;
    r.host = host;
    r.compdir = compdir;
    return r;
  }
  // A call of `name` and `id` on `first` and `second`, computed and filed.
  void file(const std::string& name, const std::string& id, const std::string& first, const std::string& second,
            const std::string& compdir, const std::string& host) const {
    write_file(a, first);
    write_file(b, second);
    Call c = call(name, id);
    c.promote(staged({{"00", first + second}, {"01", "x\n"}}), record(compdir, host));
    REQUIRE(c.done());
  }
  std::string path(const std::string& relative) const { return gfs.path() + "/" + relative; }
};

}  // namespace

TEST_CASE("a call refuses the wrong number of inputs, naming the counts", "[unit][gfs]") {
  Store s;
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, s.contract, {s.a}, s.root),
                      "expected 2 inputs (first, second), got 1");
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, s.contract, {s.a, s.b, s.a}, s.root),
                      "expected 2 inputs (first, second), got 3");
  CallContract one{{"image"}, {"out"}, "/compdir/exec"};
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, one, {}, s.root), "expected 1 input (image), got 0");
  CallContract none{{}, {"out"}, "/compdir/exec"};
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, none, {s.a}, s.root), "expected 0 inputs, got 1");
  // Without inputs a call is named "none".
  Call bare(s.gfs, "pair", cid, none, {}, s.root);
  CHECK(bare.inputs_key() == "none");
  CHECK(bare.record_path() == s.path("c_pair/21e4ed15f503/done/none"));
}

TEST_CASE("a call refuses a missing input, a directory and a FIFO, naming the input", "[unit][gfs]") {
  Store s;
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, s.contract, {s.a, "/nonexistent/b"}, s.root),
                      "input 2 (second): /nonexistent/b is not a readable regular file (No such file or directory)");
  std::string data = (s.dir.path() / "data").string();
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, s.contract, {data, s.b}, s.root),
                      "input 1 (first): " + data + " is not a readable regular file (a directory)");
  std::string fifo = (s.dir.path() / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  // Opened without blocking: a FIFO nobody writes to must not hang the call.
  REQUIRE_THROWS_WITH(Call(s.gfs, "pair", cid, s.contract, {s.a, fifo}, s.root),
                      "input 2 (second): " + fifo + " is not a readable regular file (a device, FIFO or socket)");
}

TEST_CASE("a call is named by its inputs' SHA-1s and the computation ID, and not done before anything",
          "[unit][gfs]") {
  Store s;
  Call c = s.call();
  std::string ins = sha1_alpha.substr(0, 12) + "_" + sha1_beta.substr(0, 12);
  CHECK(c.inputs_key() == ins);
  REQUIRE(c.inputs().size() == 2);
  CHECK(c.inputs()[0].name == "first");
  CHECK(c.inputs()[0].path == s.a);
  CHECK(c.inputs()[0].sha1 == sha1_alpha);
  CHECK(c.inputs()[1].sha1 == sha1_beta);
  CHECK(c.output_path(0) == s.path("c_pair/21e4ed15f503/00/" + ins));
  CHECK(c.output_path(1) == s.path("c_pair/21e4ed15f503/01/" + ins));
  CHECK(c.record_path() == s.path("c_pair/21e4ed15f503/done/" + ins));
  std::string problem;
  CHECK_FALSE(c.done(&problem));
  CHECK(problem == "no record");
  CHECK(c.verify() == std::vector<std::string>{"no record: the call is not done"});
  CHECK(c.withdraw_record().empty());
  // Looking made nothing in the GFS.
  CHECK_FALSE(fs::exists(s.path("c_pair")));
  CHECK(c.lock_path() == s.path("c_pair/21e4ed15f503/.locks/" + ins));
  CHECK(c.lock_dir());
  CHECK(fs::is_directory(fs::path(c.lock_path()).parent_path()));
}

TEST_CASE("store_inputs files each input read-only under tinputs/H2/H10, and compares one already there",
          "[unit][gfs]") {
  Store s;
  Call c = s.call();
  c.store_inputs();
  std::string stored_a = s.path("tinputs/d0/46cd9b7ffb"), stored_b = s.path("tinputs/6c/007a14875d");
  CHECK(c.inputs()[0].stored == stored_a);
  CHECK(c.inputs()[1].stored == stored_b);
  CHECK(read_file(stored_a) == "alpha\n");
  CHECK(read_file(stored_b) == "beta\n");
  for (const auto& path : {stored_a, stored_b}) {
    auto st = stat_of(path);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0444);
    CHECK(st.st_uid == ::geteuid());
  }
  // No temporary file is left beside it.
  CHECK(std::distance(fs::directory_iterator(s.path("tinputs/d0")), fs::directory_iterator()) == 1);
  c.store_inputs();  // once is enough; again is fine
  CHECK(read_file(stored_a) == "alpha\n");

  // Another file under the same name is never taken for the input.
  write_file(stored_a, "ALPHA\n");
  ::chmod(stored_a.c_str(), 0444);
  REQUIRE_THROWS_AS(s.call().store_inputs(), NameCollision);
  REQUIRE_THROWS_WITH(s.call().store_inputs(),
                      Catch::StartsWith("the GFS holds another file as " + stored_a + " (SHA-1 "));
  CHECK(read_file(stored_a) == "ALPHA\n");
}

TEST_CASE("a filed file used as an input is hashed once per Gfs, and again when it has changed", "[unit][gfs]") {
  Store s;
  s.call().store_inputs();
  std::string stored = s.path("tinputs/d0/46cd9b7ffb");
  InputFile first = open_input(s.gfs, "x", stored, s.root, "x");
  CHECK(first.in_gfs);
  CHECK(first.sha1 == sha1_alpha);
  CHECK(first.fd);  // read
  InputFile again = open_input(s.gfs, "x", stored, s.root, "x");
  CHECK(again.sha1 == sha1_alpha);
  CHECK(again.stored == stored);
  CHECK_FALSE(again.fd);  // known: not read again
  // Replaced under the same name (a new inode and time): read afresh.
  fs::remove(stored);
  write_file(stored, "beta\n");
  ::chmod(stored.c_str(), 0444);
  InputFile changed = open_input(s.gfs, "x", stored, s.root, "x");
  CHECK(changed.sha1 == sha1_beta);
  CHECK(changed.fd);
  // Another Gfs of the same directory knows nothing yet.
  Gfs other(s.gfs.path());
  CHECK(open_input(other, "x", stored, s.root, "x").fd);
}

TEST_CASE("promote files the outputs read-only with the record, and then the call is done", "[unit][gfs]") {
  Store s;
  Call c = s.call();
  StagedCall staged = s.staged({{"00", "alpha\nbeta\n"}, {"01", "6\n"}});
  CHECK(output_number(1) == "01");
  c.promote(staged, s.record());
  CHECK(read_file(c.output_path(0)) == "alpha\nbeta\n");
  CHECK(read_file(c.output_path(1)) == "6\n");
  for (const auto& path : {c.output_path(0), c.output_path(1), c.record_path()}) {
    auto st = stat_of(path);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0444);
    CHECK(st.st_uid == ::geteuid());
    CHECK(st.st_nlink == 1);
  }
  std::string problem;
  auto done = c.done(&problem);
  INFO(problem);
  REQUIRE(done);
  REQUIRE(done->outputs.size() == 2);
  CHECK(done->outputs[0].name == "joined");
  CHECK(done->outputs[0].size == 11);
  CHECK(done->outputs[0].sha256 == sha256_joined);
  CHECK(done->outputs[1].name == "size");
  CHECK(done->outputs[1].size == 2);
  CHECK(done->outputs[1].sha256 == sha256_size);
  CHECK(done->inputs == std::vector<std::pair<std::string, std::string>>{{"first", sha1_alpha}, {"second", sha1_beta}});
  CHECK(done->compdir == "/home/alice/pair");
  CHECK(done->host == "vm");
  CHECK(done->start == "2026-11-23T12:49:20Z");
  CHECK(c.verify().empty());
  // The record on disk is the record done() read.
  CHECK(read_file(c.record_path()) == format_record(*done));
}

TEST_CASE("a missing output makes promote throw naming it, and nothing is filed", "[unit][gfs]") {
  Store s;
  Call c = s.call();
  StagedCall staged = s.staged({{"00", "alpha\nbeta\n"}});
  REQUIRE_THROWS_WITH(c.promote(staged, s.record()),
                      "output 1 (size) was not written to " + staged.container_path() + "/01");
  CHECK_FALSE(c.done());
  CHECK_FALSE(fs::exists(c.output_path(0)));
  CHECK_FALSE(fs::exists(c.record_path()));
  // Output 0 was copied before output 1 was missed: its temporary is gone too.
  std::string output_dir = fs::path(c.output_path(0)).parent_path().string();
  CHECK((!fs::exists(output_dir) || fs::is_empty(output_dir)));
}

TEST_CASE("promote refuses a symlink or a file with two links in the staging directory", "[unit][gfs]") {
  Store s;
  Call c = s.call();
  SECTION("a symlink") {
    StagedCall staged = s.staged({{"01", "6\n"}});
    write_file(s.dir.path() / "secret", "root's\n");
    REQUIRE(::symlink((s.dir.path() / "secret").c_str(), (fs::path(staged.host_path()) / "00").c_str()) == 0);
    REQUIRE_THROWS_WITH(c.promote(staged, s.record()),
                        "output 0 (joined): " + staged.container_path() + "/00" +
                            " is a symbolic link; ce-run reads only regular files there and never follows a link; "
                            "an output must be a regular file the command wrote");
  }
  SECTION("a hard link") {
    StagedCall staged = s.staged({{"00", "alpha\nbeta\n"}});
    write_file(s.dir.path() / "elsewhere", "6\n");
    REQUIRE(::link((s.dir.path() / "elsewhere").c_str(), (fs::path(staged.host_path()) / "01").c_str()) == 0);
    REQUIRE_THROWS_WITH(c.promote(staged, s.record()),
                        "output 1 (size): " + staged.container_path() + "/01" +
                            " has 2 hard links; an output must be a file of its own");
  }
  CHECK_FALSE(c.done());
  CHECK_FALSE(fs::exists(c.output_path(0)));
  CHECK_FALSE(fs::exists(c.output_path(1)));
  CHECK_FALSE(fs::exists(c.record_path()));
}

TEST_CASE("verify finds a flipped byte in a filed output, and a withdrawn record is not done", "[unit][gfs]") {
  Store s;
  Call c = s.call();
  c.promote(s.staged({{"00", "alpha\nbeta\n"}, {"01", "6\n"}}), s.record());
  REQUIRE(c.verify().empty());
  {
    std::fstream f(c.output_path(0), std::ios::in | std::ios::out | std::ios::binary);  // root writes a 0444 file
    f.seekp(0);
    f.put('A');
  }
  REQUIRE(read_file(c.output_path(0)) == "Alpha\nbeta\n");
  // Same size: done() alone does not see it; verify() re-hashes.
  CHECK(c.done());
  auto problems = c.verify();
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::StartsWith(c.output_path(0) + ": SHA-256 "));
  CHECK_THAT(problems[0], Catch::EndsWith(", recorded " + sha256_joined));
  CHECK_FALSE(Catch::Contains(sha256_joined + ", recorded").match(problems[0]));

  std::string aside = c.withdraw_record();
  CHECK_THAT(aside, Catch::StartsWith(c.record_path() + ".corrupt."));
  CHECK(fs::exists(aside));
  CHECK_FALSE(fs::exists(c.record_path()));
  std::string problem;
  CHECK_FALSE(c.done(&problem));
  CHECK(problem == "no record");
  CHECK(c.withdraw_record().empty());  // nothing left to withdraw
}

TEST_CASE("a record of other inputs sharing the 12 digits of the name is a NameCollision, never a result",
          "[unit][gfs]") {
  Store s;
  Call c = s.call();
  c.promote(s.staged({{"00", "alpha\nbeta\n"}, {"01", "6\n"}}), s.record());
  // Input 1 of the record: the same first 12 digits, another SHA-1.
  std::string other = sha1_alpha.substr(0, 39) + (sha1_alpha.back() == '0' ? "1" : "0");
  std::string text = read_file(c.record_path());
  auto at = text.find("input " + sha1_alpha);
  REQUIRE(at != std::string::npos);
  text.replace(at + 6, 40, other);
  ::chmod(c.record_path().c_str(), 0644);
  write_file(c.record_path(), text);
  ::chmod(c.record_path().c_str(), 0444);
  REQUIRE_THROWS_MATCHES(
      c.done(), NameCollision,
      Catch::Message("input 1 (first): " + s.a + " has SHA-1 " + sha1_alpha +
                     ", but the result the GFS holds under its name, " + c.record_path() +
                     ", was computed from another input, " + s.path("tinputs/d0/46cd9b7ffb") + " (SHA-1 " + other +
                     "): the two SHA-1s share the 12 digits that name a result. ce-run never gives one input's "
                     "result for another's; this call cannot be filed in this GFS (use another GFS for it)"));
  // verify() reports it rather than throwing.
  auto problems = c.verify();
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "input 1 (first): SHA-1 " + sha1_alpha + ", the record's " + other);
}

TEST_CASE("a record that is not ce-run's read-only file, or names outputs that are gone, is not done",
          "[unit][gfs]") {
  Store s;
  Call c = s.call();
  c.promote(s.staged({{"00", "alpha\nbeta\n"}, {"01", "6\n"}}), s.record());
  std::string problem;
  SECTION("a writable record") {
    ::chmod(c.record_path().c_str(), 0644);
    CHECK_FALSE(c.done(&problem));
    CHECK(problem == "the record is not one ce-run wrote");
  }
  SECTION("an output of another size") {
    ::chmod(c.output_path(1).c_str(), 0644);
    write_file(c.output_path(1), "16\n");
    ::chmod(c.output_path(1).c_str(), 0444);
    CHECK_FALSE(c.done(&problem));
    CHECK(problem == "output 1 (size) is missing or changed");
  }
  SECTION("a missing output") {
    fs::remove(c.output_path(0));
    CHECK_FALSE(c.done(&problem));
    CHECK(problem == "output 0 (joined) is missing or changed");
  }
  SECTION("a record cut short") {
    ::chmod(c.record_path().c_str(), 0644);
    write_file(c.record_path(), "ce-run call record 1\nexit_code 0\n");
    ::chmod(c.record_path().c_str(), 0444);
    CHECK_FALSE(c.done(&problem));
    CHECK(problem == "the record was cut short");
  }
}

TEST_CASE("format_record and parse_record round-trip, and a damaged record parses to nothing with a reason",
          "[unit][gfs]") {
  CallRecord r;
  r.exit_code = 0;
  r.start = "2026-11-23T12:49:20Z";
  r.end = "2026-11-23T12:49:22Z";
  r.seconds = 1.5;
  r.computation_id = cid;
  r.commit = "17c469a1d102f9660a0a846af2fcd6c59822b175";
  r.tree = other_cid;
  r.dirty = true;
  r.base_image_id = "sha256:" + sha256_size;
  r.final_key = sha256_joined;
  r.host = "vm";
  r.compdir = "/home/alice/a dir with spaces";
  r.inputs = {{"first", sha1_alpha}, {"second name", sha1_beta}};
  r.outputs = {{"joined", sha256_joined, 11}, {"the size", sha256_size, 2}};
  std::string text = format_record(r);
  CHECK_THAT(text, Catch::StartsWith("ce-run call record 1\nexit_code 0\n"));
  CHECK_THAT(text, Catch::EndsWith("output " + sha256_size + " 2 the size\nend-of-record\n"));
  std::string problem = "unchanged";
  auto back = parse_record(text, &problem);
  REQUIRE(back);
  CHECK(problem == "unchanged");
  CHECK(back->start == r.start);
  CHECK(back->end == r.end);
  CHECK(back->seconds == 1.5);
  CHECK(back->computation_id == r.computation_id);
  CHECK(back->commit == r.commit);
  CHECK(back->tree == r.tree);
  CHECK(back->dirty);
  CHECK(back->base_image_id == r.base_image_id);
  CHECK(back->final_key == r.final_key);
  CHECK(back->host == "vm");
  CHECK(back->compdir == r.compdir);
  CHECK(back->inputs == r.inputs);
  REQUIRE(back->outputs.size() == 2);
  CHECK(back->outputs[1].name == "the size");
  CHECK(back->outputs[1].sha256 == sha256_size);
  CHECK(back->outputs[1].size == 2);
  CHECK(format_record(*back) == text);

  auto reason = [](const std::string& damaged) {
    std::string why;
    CHECK_FALSE(parse_record(damaged, &why));
    return why;
  };
  CHECK(reason("") == "the record is not a ce-run call record 1");
  CHECK(reason("ce-run call record 2\n" + text.substr(text.find('\n') + 1)) ==
        "the record is not a ce-run call record 1");
  CHECK(reason(text.substr(0, text.rfind("end-of-record"))) == "the record was cut short");
  CHECK(reason("ce-run call record 1\nexit_code zero\nend-of-record\n") == "the record is damaged");
  CHECK(reason("ce-run call record 1\nflavour sweet\nend-of-record\n") == "the record has an unknown line");
  CHECK(reason("ce-run call record 1\noutput abc 2 size\nend-of-record\n") == "the record is damaged");
  CHECK(reason("ce-run call record 1\ninput d046cd9b first\nend-of-record\n") == "the record is damaged");
  CHECK(reason("ce-run call record 1\nexit_code\nend-of-record\n") == "the record is damaged");
}

TEST_CASE("collect_results removes only the records of the given COMPDIR and host, under IDs not kept",
          "[unit][gfs]") {
  Store s;
  const std::string mine = "/home/alice/pair", host = "vm";
  const std::string old_id = "aaaaaaaaaaaa" + cid.substr(12), gone_id = "bbbbbbbbbbbb" + cid.substr(12),
                    kept_id = "cccccccccccc" + cid.substr(12), theirs_id = "dddddddddddd" + cid.substr(12);
  // aaaaaaaaaaaa: one call of ours, one of another directory, one of another host.
  s.file("pair", old_id, "1\n", "2\n", mine, host);
  s.file("pair", old_id, "3\n", "4\n", "/home/bob/pair", host);
  s.file("pair", old_id, "5\n", "6\n", mine, "other-host");
  // bbbbbbbbbbbb: ours alone. cccccccccccc: ours, but kept. dddddddddddd: someone else's.
  s.file("pair", gone_id, "1\n", "2\n", mine, host);
  s.file("pair", gone_id, "3\n", "4\n", mine, host);
  s.file("pair", kept_id, "1\n", "2\n", mine, host);
  s.file("pair", theirs_id, "1\n", "2\n", "/home/bob/pair", host);
  // Another computation's results are never looked at.
  s.file("other", old_id, "1\n", "2\n", mine, host);
  auto count = [&](const std::string& relative) {
    if (!fs::exists(s.path(relative))) return -1;
    return static_cast<int>(std::distance(fs::directory_iterator(s.path(relative)), fs::directory_iterator()));
  };
  auto sorted = [](const CollectedResults& r) {
    std::vector<std::pair<std::string, std::size_t>> v;
    for (const auto& c : r.removed) v.emplace_back(c.cid12, c.calls);
    std::sort(v.begin(), v.end());
    return v;
  };
  const std::vector<std::pair<std::string, std::size_t>> expected = {{"aaaaaaaaaaaa", 1}, {"bbbbbbbbbbbb", 2}};

  auto dry = collect_results(s.gfs, "pair", {"cccccccccccc"}, mine, host, true);
  REQUIRE(dry);
  CHECK(sorted(*dry) == expected);
  CHECK(dry->left_to_others == 1);
  CHECK(count("c_pair/aaaaaaaaaaaa/done") == 3);  // a dry run removes nothing
  CHECK(count("c_pair/bbbbbbbbbbbb/done") == 2);

  auto real = collect_results(s.gfs, "pair", {"cccccccccccc"}, mine, host, false);
  REQUIRE(real);
  CHECK(sorted(*real) == expected);
  CHECK(real->left_to_others == 1);
  // Only our call of aaaaaaaaaaaa went: its record and both its outputs.
  CHECK(count("c_pair/aaaaaaaaaaaa/done") == 2);
  CHECK(count("c_pair/aaaaaaaaaaaa/00") == 2);
  CHECK(count("c_pair/aaaaaaaaaaaa/01") == 2);
  CHECK_FALSE(fs::exists(s.path("c_pair/aaaaaaaaaaaa/00/e5fa44f2b31c_7448d8798a43")));  // sha1 of 1\n, 2\n
  CHECK(count("c_pair/bbbbbbbbbbbb") == -1);  // nothing else there: removed as a whole
  CHECK(count("c_pair/cccccccccccc/done") == 1);
  CHECK(count("c_pair/dddddddddddd/done") == 1);
  CHECK(count("c_other/aaaaaaaaaaaa/done") == 1);

  auto again = collect_results(s.gfs, "pair", {"cccccccccccc"}, mine, host, false);
  REQUIRE(again);
  CHECK(again->removed.empty());
  CHECK(again->left_to_others == 2);
  // No results of a name at all: nothing to say.
  CHECK_FALSE(collect_results(s.gfs, "never-ran", {}, mine, host, false));
}
