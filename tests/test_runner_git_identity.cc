// The computation's identity through libgit2, on real repositories made with
// git: plain, subdirectory, detached, shallow, submodule, linked worktree.
#include <catch2/catch.hpp>

#include <fstream>

#include "runner/git_identity.h"
#include "support/ce_run.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using ce::test::make_repo;
using ce::test::sh;
using ce::test::TempDir;

namespace {
std::string git_out(const boost::filesystem::path& dir, const std::string& command) {
  std::string full = "cd '" + dir.string() + "' && " + command;
  FILE* pipe = ::popen(full.c_str(), "r");
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  ::pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}
const char* const commit_all = "git add -A && git -c user.name=t -c user.email=t@e commit -q -m c";
}  // namespace

TEST_CASE("the commit and the tree of a computation in a subdirectory", "[git]") {
  TempDir repo;
  make_repo(repo.path(), {{"comp/docker.conf", "image = \"x\"\n"}, {"other/file", "1\n"}});
  auto id = identify((repo.path() / "comp").string());
  CHECK(id.commit == git_out(repo.path(), "git rev-parse HEAD"));
  CHECK(id.tree == git_out(repo.path(), "git rev-parse HEAD:comp"));
  CHECK(id.subpath == "comp");
  CHECK(id.branch == "main");
  CHECK(id.dirty_files.empty());
  CHECK(id.content_tree == id.tree);
  CHECK(computation_id(id).size() == 40);

  // A commit elsewhere in the repository keeps the tree and the ID.
  auto before = computation_id(id);
  sh(repo.path(), std::string("echo 2 > other/file && ") + commit_all);
  auto after = identify((repo.path() / "comp").string());
  CHECK(after.commit != id.commit);
  CHECK(after.tree == id.tree);
  CHECK(computation_id(after) == before);
}

TEST_CASE("uncommitted and untracked files are listed, ignored ones and docker-container are not", "[git]") {
  TempDir repo;
  make_repo(repo.path(), {{"docker.conf", "image = \"x\"\n"}, {".gitignore", "*.log\n"}});
  std::ofstream((repo.path() / "docker.conf").string(), std::ios::app) << "name = \"y\"\n";
  std::ofstream((repo.path() / "new.txt").string()) << "new\n";
  std::ofstream((repo.path() / "run.log").string()) << "ignored\n";
  std::ofstream((repo.path() / "docker-container").string()) << "ours\n";
  auto id = identify(repo.str());
  CHECK(id.dirty_files == std::vector<std::string>{"docker.conf", "new.txt"});
  CHECK(id.content_tree.rfind("dirty-", 0) == 0);
  CHECK(computation_id(id) != id.tree.substr(0, 40));
  // The same dirty content gives the same digest; other content another.
  CHECK(identify(repo.str()).content_tree == id.content_tree);
  std::ofstream((repo.path() / "new.txt").string()) << "changed\n";
  CHECK(identify(repo.str()).content_tree != id.content_tree);
}

TEST_CASE("not a repository, or one without a commit, is a clear error", "[git]") {
  TempDir plain;
  REQUIRE_THROWS_WITH(identify(plain.str()),
                      plain.str() + " is not inside a Git repository; ce-run keys a computation by its commit: "
                                    "run `git init' and commit it");
  sh(plain.path(), "git init -q .");
  REQUIRE_THROWS_WITH(identify(plain.str()), "the Git repository at " + plain.str() +
                                                 " has no commit yet; commit the computation first");
  TempDir repo;
  make_repo(repo.path(), {{"a", "1\n"}});
  boost::filesystem::create_directories(repo.path() / "uncommitted");
  std::ofstream((repo.path() / "uncommitted" / "f").string()) << "x\n";
  REQUIRE_THROWS_WITH(identify((repo.path() / "uncommitted").string()),
                      Catch::EndsWith("is not in commit " + git_out(repo.path(), "git rev-parse HEAD").substr(0, 12) +
                                      " (HEAD): add and commit it"));
}

TEST_CASE("a detached HEAD, a shallow clone, a submodule and a linked worktree work", "[git]") {
  TempDir repo;
  make_repo(repo.path(), {{"comp/docker.conf", "image = \"x\"\n"}});
  sh(repo.path(), std::string("echo 2 > comp/data && ") + commit_all);
  std::string head = git_out(repo.path(), "git rev-parse HEAD");

  sh(repo.path(), "git checkout -q --detach HEAD~1");
  auto detached = identify((repo.path() / "comp").string());
  CHECK(detached.branch.empty());
  CHECK(detached.commit == git_out(repo.path(), "git rev-parse HEAD"));
  sh(repo.path(), "git checkout -q main");

  TempDir shallow;
  sh(shallow.path(), "git clone -q --depth 1 file://" + repo.str() + " clone");
  auto s = identify((shallow.path() / "clone" / "comp").string());
  CHECK(s.shallow);
  CHECK(s.commit == head);

  TempDir super;
  make_repo(super.path(), {{"README", "super\n"}});
  sh(super.path(), "git -c protocol.file.allow=always submodule add -q " + repo.str() + " computations && " +
                       commit_all);
  auto sub = identify((super.path() / "computations" / "comp").string());
  CHECK(sub.commit == head);
  CHECK(sub.subpath == "comp");
  CHECK(sub.dirty_files.empty());

  TempDir worktrees;
  sh(repo.path(), "git worktree add -q " + (worktrees.path() / "wt").string() + " -b other");
  auto wt = identify((worktrees.path() / "wt" / "comp").string());
  CHECK(wt.branch == "other");
  CHECK(wt.commit == head);
}
