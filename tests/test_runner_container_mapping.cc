// The docker-container file (runner/container_mapping.h) without the
// engine: written and read back in a temporary COMPDIR, read tolerantly
// when damaged, and the labels that make a container a commit's.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <fstream>
#include <sys/stat.h>

#include "runner/compdir.h"
#include "runner/container_mapping.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using ce::test::TempDir;
namespace fs = boost::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path.string(), std::ios::binary | std::ios::trunc) << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path.string(), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string hex(char digit, std::size_t n) { return std::string(n, digit); }

MappingEntry entry(char digit, const std::string& suffix = "") {
  return {hex(digit, 40) + suffix, hex('e', 40), hex(digit, 64), "sha256:" + hex('f', 64), "2026-11-23T12:49:20Z"};
}

void check_same(const ContainerMapping& got, const ContainerMapping& want) {
  REQUIRE(got.entries.size() == want.entries.size());
  for (std::size_t i = 0; i < want.entries.size(); ++i) {
    INFO("entry " << i);
    CHECK(got.entries[i].commit == want.entries[i].commit);
    CHECK(got.entries[i].tree == want.entries[i].tree);
    CHECK(got.entries[i].container == want.entries[i].container);
    CHECK(got.entries[i].stage_key == want.entries[i].stage_key);
    CHECK(got.entries[i].created == want.entries[i].created);
  }
}

const char* const header = "ce-run docker-container 1\n# computation(commit) -> container; written by ce-run\n";

}  // namespace

TEST_CASE("the docker-container file is written atomically and read back as it was", "[unit][mapping]") {
  TempDir dir;
  write_file(dir.path() / "docker.conf", "image = \"busybox\"\n");
  Invoker root;  // uid 0, as invoking_user() gives root without sudo
  CompDir comp = open_compdir(dir.str(), root);
  ContainerMapping mapping;
  mapping.put(entry('a'));
  mapping.put(entry('b', "-dirty"));
  write_mapping(comp, mapping, root);

  fs::path file = dir.path() / "docker-container";
  CHECK(read_file(file) == std::string(header) + entry('b', "-dirty").commit + " " + hex('e', 40) + " " +
                               hex('b', 64) + " sha256:" + hex('f', 64) + " 2026-11-23T12:49:20Z\n" +
                               entry('a').commit + " " + hex('e', 40) + " " + hex('a', 64) + " sha256:" +
                               hex('f', 64) + " 2026-11-23T12:49:20Z\n");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
  // Only docker.conf and the file itself: no temporary file is left.
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);

  auto by_path = read_mapping(file.string());
  CHECK(by_path.problem.empty());
  check_same(by_path.mapping, mapping);
  auto by_compdir = read_mapping(comp);
  CHECK(by_compdir.problem.empty());
  check_same(by_compdir.mapping, mapping);
  REQUIRE(by_compdir.mapping.find(entry('b', "-dirty").commit));
  CHECK(by_compdir.mapping.find(entry('b', "-dirty").commit)->container == hex('b', 64));
  CHECK_FALSE(by_compdir.mapping.find(entry('b').commit));  // the clean commit is another key

  // Written again: replaced, not appended to.
  ContainerMapping one;
  one.put(entry('c'));
  write_mapping(comp, one, root);
  check_same(read_mapping(file.string()).mapping, one);
}

TEST_CASE("a missing docker-container file is no problem, a damaged one gives a reason and no entries",
          "[unit][mapping]") {
  TempDir dir;
  fs::path file = dir.path() / "docker-container";
  auto missing = read_mapping(file.string());
  CHECK(missing.problem.empty());
  CHECK(missing.mapping.entries.empty());

  std::string good = entry('a').commit + " " + hex('e', 40) + " " + hex('a', 64) + " k 2026-11-23T12:49:20Z\n";
  auto problem_of = [&](const std::string& text) {
    write_file(file, text);
    auto read = read_mapping(file.string());
    CHECK(read.mapping.entries.empty());
    return read.problem;
  };
  CHECK(problem_of("") == "it is empty");
  CHECK(problem_of("ce-run docker-container 2\n" + good) == "it is of another version (2)");
  CHECK(problem_of("containers\n" + good) == "its first line is not \"ce-run docker-container 1\"");
  // A good line first, then a damaged one: nothing of it is used.
  CHECK(problem_of(std::string(header) + good + "not-a-commit tree container key time\n") == "line 4 is damaged");
  CHECK(problem_of(std::string(header) + good + good.substr(0, good.size() - 1) + " extra\n") == "line 4 is damaged");
  CHECK(problem_of(std::string(header) + hex('a', 40) + "-wip " + good.substr(41)) == "line 3 is damaged");
  CHECK(problem_of(std::string(header) + good.substr(0, good.size() - 1)) == "it was cut short");
  // The same text, whole, reads fine.
  write_file(file, std::string(header) + good);
  auto fine = read_mapping(file.string());
  CHECK(fine.problem.empty());
  CHECK(fine.mapping.entries.size() == 1);
}

TEST_CASE("put puts an entry first, replacing the one of the same commit, and keeps at most ten",
          "[unit][mapping]") {
  ContainerMapping m;
  m.put(entry('a'));
  m.put(entry('b'));
  auto newer = entry('a');
  newer.container = hex('9', 64);
  m.put(newer);
  REQUIRE(m.entries.size() == 2);
  CHECK(m.entries[0].commit == entry('a').commit);
  CHECK(m.entries[0].container == hex('9', 64));
  CHECK(m.entries[1].commit == entry('b').commit);
  m.put(entry('a', "-dirty"));  // a dirty work tree is another key
  CHECK(m.entries.size() == 3);

  ContainerMapping full;
  const std::string digits = "0123456789ab";
  for (char d : digits) full.put(entry(d));
  REQUIRE(full.entries.size() == ContainerMapping::max_entries);
  CHECK(full.entries.front().commit == entry('b').commit);  // the newest first
  CHECK(full.entries.back().commit == entry('2').commit);   // the two oldest dropped
  CHECK_FALSE(full.find(entry('1').commit));
}

TEST_CASE("a container is a commit's run container only when its role, COMPDIR and commit labels all say so",
          "[unit][mapping]") {
  const std::string compdir = "/home/alice/pair", commit = entry('a').commit;
  ce::docker::Labels labels = {{label::role, "run"}, {label::compdir, compdir}, {label::commit, commit}};
  CHECK(is_run_container_of(labels, compdir, commit));
  auto without = [&](const char* key) {
    auto l = labels;
    l.erase(key);
    return l;
  };
  auto with = [&](const char* key, const std::string& value) {
    auto l = labels;
    l[key] = value;
    return l;
  };
  CHECK_FALSE(is_run_container_of(with(label::role, "build"), compdir, commit));
  CHECK_FALSE(is_run_container_of(without(label::role), compdir, commit));
  CHECK_FALSE(is_run_container_of(with(label::compdir, "/home/bob/pair"), compdir, commit));
  CHECK_FALSE(is_run_container_of(without(label::compdir), compdir, commit));
  CHECK_FALSE(is_run_container_of(labels, compdir, commit + "-dirty"));
  CHECK_FALSE(is_run_container_of(without(label::commit), compdir, commit));
  CHECK_FALSE(is_run_container_of(labels, "/home/alice/pair/", commit));
}
