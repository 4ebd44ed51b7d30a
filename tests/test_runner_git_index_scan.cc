// The index scan in front of libgit2's status (runner/git_index_scan.h),
// checked against git itself: in each scenario identify()'s dirty files
// must be exactly what `git status` lists, for COMPDIR at the work tree's
// root and in a subdirectory, and the index must be left untouched.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "runner/git_identity.h"
#include "runner/git_index_scan.h"
#include "support/ce_run.h"
#include "support/computation.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using ce::test::sh;
using ce::test::slurp;
using ce::test::TempDir;
namespace fs = boost::filesystem;

namespace {

std::string run(const fs::path& dir, const std::string& command) {
  std::string full = "cd '" + dir.string() + "' && " + command;
  FILE* pipe = ::popen(full.c_str(), "r");
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// What git says is uncommitted under `sub`, relative to it, as identify()
// reports it (docker-container left out).
std::vector<std::string> git_truth(const fs::path& work, const std::string& sub) {
  std::string out = run(work, "git --no-optional-locks status --porcelain -uall --ignore-submodules=all -z -- " +
                                  (sub.empty() ? std::string(".") : sub));
  std::set<std::string> paths;
  std::vector<std::string> fields;
  for (std::size_t start = 0, nul; (nul = out.find('\0', start)) != std::string::npos; start = nul + 1)
    fields.push_back(out.substr(start, nul - start));
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::string& f = fields[i];
    if (f.size() < 4) continue;
    paths.insert(f.substr(3));
    if (f[0] == 'R' || f[0] == 'C') paths.insert(fields[++i]);  // a rename: new, then old
  }
  std::vector<std::string> result;
  for (std::string p : paths) {
    if (!sub.empty()) {
      if (p.rfind(sub + "/", 0) != 0) continue;
      p = p.substr(sub.size() + 1);
    }
    if (p == "docker-container" || p.rfind("docker-container.", 0) == 0) continue;
    result.push_back(p);
  }
  return result;
}

// comp/ (15 directories of 10 files) and 5 directories beside it, with
// ignore rules at both levels; every file's time in the past, so that the
// index written after them is not racy and the scan can prove them clean.
void make_base(const fs::path& base) {
  fs::create_directories(base);
  sh(base,
     "printf '*.log\\nbuild/\\n' > .gitignore && echo readme > README && mkdir comp && "
     "printf '*.tmp\\n' > comp/.gitignore && "
     "for d in 00 01 02 03 04 05 06 07 08 09 10 11 12 13 14; do mkdir comp/d$d; "
     "  for f in 0 1 2 3 4 5 6 7 8 9; do echo \"file $d $f\" > comp/d$d/f$f.txt; done; done && "
     "for d in 15 16 17 18 19; do mkdir d$d; for f in 0 1 2 3 4 5 6 7 8 9; do echo \"file $d $f\" > d$d/f$f.txt; done; done && "
     "find . -type f -exec touch -d @1600000000 {} + && "
     "git init -q -b main . && git add -A && git -c user.name=t -c user.email=t@e commit -q -m base");
}

const char* const racy =  // an entry exactly as old as the index: its stat data proves nothing
    "git config core.trustctime false && f=comp/d12/f0.txt && touch -d @1700000000 $f && "
    "git update-index -q --refresh; git add $f && touch -d @1700000000 .git/index";
const char* const commit = "git -c user.name=t -c user.email=t@e commit -q";

}  // namespace

TEST_CASE("identify lists exactly what git status lists, and leaves the index alone", "[git]") {
  TempDir dir(TempDir::Storage::memory);
  fs::path base = dir.path() / "base", work = dir.path() / "work";
  make_base(base);
  const std::vector<std::pair<const char*, std::string>> scenarios = {
      {"clean", "true"},
      {"modified", "echo more >> comp/d01/f1.txt"},
      {"modified, same size", "sed -i 's/file/FILE/' comp/d01/f2.txt"},
      {"staged", "echo more >> comp/d02/f2.txt && git add comp/d02/f2.txt"},
      {"staged, then reverted in the work tree",
       "echo more >> comp/d02/f3.txt && git add comp/d02/f3.txt && git show HEAD:comp/d02/f3.txt > comp/d02/f3.txt"},
      {"deleted", "rm comp/d03/f3.txt"},
      {"deleted and staged", "git rm -q comp/d03/f4.txt"},
      {"untracked", "echo n > comp/d04/new.txt && mkdir -p comp/newdir/a && echo n > comp/newdir/a/b.txt"},
      {"ignored", "echo l > comp/d05/x.log && mkdir -p comp/build && echo o > comp/build/out.o && echo t > comp/d05/y.tmp"},
      {"touched", "touch -d '2030-01-01' comp/d06/f6.txt"},
      {"all touched", "find comp d15 -type f -exec touch -d '2031-01-01' {} +"},
      {"only nanoseconds changed",
       "touch -d \"$(stat -c %y comp/d01/f1.txt | sed 's/\\.[0-9]*/.000000001/')\" comp/d01/f1.txt"},
      {"racy, clean", racy},
      {"racy, changed", std::string(racy) + " && sed -i 's/file/FILE/' comp/d12/f0.txt && touch -d @1700000000 comp/d12/f0.txt"},
      {"changes outside COMPDIR",
       "echo x >> d15/f0.txt && echo n > README2 && echo y >> d16/f1.txt && git add d16/f1.txt && rm d17/f2.txt"},
      {"staged outside COMPDIR only", "echo y >> d16/f1.txt && git add d16/f1.txt"},
      {"a file made a symlink", "rm comp/d07/f7.txt && ln -s f0.txt comp/d07/f7.txt"},
      {"renamed and staged", "git mv comp/d08/f8.txt comp/d08/renamed.txt"},
      {"renamed, not staged", "mv comp/d08/f9.txt comp/d08/renamed2.txt"},
      {"a directory deleted", "rm -rf comp/d09"},
      {"docker-container files", "echo y >> comp/docker-container && echo z > comp/docker-container.log2"},
      {"a file made a directory", "rm comp/d10/f0.txt && mkdir comp/d10/f0.txt && echo i > comp/d10/f0.txt/inner"},
      {"intent to add", "echo n > comp/d11/ita.txt && git add -N comp/d11/ita.txt"},
      {"chmod +x", "chmod +x comp/d13/f0.txt"},
      {"an empty untracked directory", "mkdir -p comp/emptydir/sub"},
      {"only ignored directories",
       "mkdir -p comp/build/x d15/build && echo o > comp/build/x/out.o && echo l > comp/d01/a.log && "
       "echo l > d15/b.log && echo o > d15/build/o"},
      {"untracked in an ignored tracked directory",
       "mkdir -p comp/build && echo o > comp/build/tracked.o && git add -f comp/build/tracked.o && " +
           std::string(commit) + " -m t && echo n > comp/build/new.o && echo n > comp/build/new.txt"},
      {"index version 4, clean", "git update-index --index-version 4"},
      {"index version 4, changed",
       "git update-index --index-version 4 && echo m >> comp/d14/f3.txt && echo u > comp/d14/u.txt"},
      {"a nested repository", "mkdir -p comp/nested && git -C comp/nested init -q && echo a > comp/nested/a"},
      {"a directory gone and a file new beside it", "rm -rf comp/d09 && echo z > comp/zz.txt"},
      {"a directory replaced by a symlink", "mv comp/d05 comp/d05x && ln -s d05x comp/d05"},
      {"deleted and untracked in one directory",
       "rm comp/d01/f1.txt && echo n > comp/d01/new.txt && echo m >> comp/d02/f2.txt"},
      {"deleted and ignored in one directory", "rm comp/d01/f1.txt && echo n > comp/d01/x.log"},
      {"committed, then clean", "echo c >> comp/d01/f1.txt && " + std::string(commit) + " -am c"},
      {"another branch checked out and back",
       "git checkout -qb other && echo c >> comp/d01/f1.txt && " + std::string(commit) +
           " -am c && git checkout -q -"},
  };
  for (const auto& [name, action] : scenarios) {
    fs::remove_all(work);
    sh(dir.path(), "cp -a base work");
    sh(work, "git update-index -q --refresh; true");  // the copy's stat data, as after a checkout
    sh(work, action);
    std::string index_before = slurp((work / ".git/index").string());
    for (const std::string sub : {"", "comp"}) {
      INFO("scenario: " << name << ", COMPDIR: " << (sub.empty() ? "the root" : sub));
      auto id = identify((sub.empty() ? work : work / sub).string());
      CHECK(id.dirty_files == git_truth(work, sub));
      CHECK(slurp((work / ".git/index").string()) == index_before);
    }
  }
}

TEST_CASE("the index scan proves a clean tree clean and names what changed", "[git]") {
  TempDir dir(TempDir::Storage::memory);
  make_base(dir.path());
  sh(dir.path(), "git update-index -q --refresh; true");
  auto scan = [&](const std::string& sub) {
    auto id = identify((sub.empty() ? dir.path() : dir.path() / sub).string());
    git_libgit2_init();
    git_repository* repo = nullptr;
    REQUIRE(git_repository_open(&repo, dir.str().c_str()) == 0);
    git_oid tree;
    git_oid_fromstr(&tree, id.tree.c_str());
    auto result = scan_index(repo, sub, tree);
    git_repository_free(repo);
    git_libgit2_shutdown();
    return result;
  };
  CHECK(scan("").kind == IndexScan::Kind::clean);
  CHECK(scan("comp").kind == IndexScan::Kind::clean);
  sh(dir.path(), "echo more >> comp/d01/f1.txt && echo new > comp/d02/new.txt && echo ignored > comp/d03/x.log");
  auto changed = scan("comp");
  CHECK(changed.kind == IndexScan::Kind::partial);
  CHECK(changed.index_matches_head);
  std::sort(changed.paths.begin(), changed.paths.end());
  CHECK(changed.paths == std::vector<std::string>{"comp/d01/f1.txt", "comp/d02/new.txt", "comp/d03/x.log"});
  sh(dir.path(), "git add comp/d01/f1.txt");
  CHECK_FALSE(scan("comp").index_matches_head);
  CHECK(scan("d15").kind == IndexScan::Kind::clean);  // the changes are elsewhere
}

TEST_CASE("a truncated or corrupt index is refused or left to libgit2, never read out of bounds", "[git]") {
  // The scan alone: libgit2 1.5 itself leaks on some corrupt indexes, which
  // would fail the sanitizer pass for a fault not ours.
  TempDir dir(TempDir::Storage::memory);
  make_base(dir.path());
  auto tree = [&] { return identify((dir.path() / "comp").string()).tree; }();
  git_oid subtree;
  git_oid_fromstr(&subtree, tree.c_str());
  git_libgit2_init();
  git_repository* repo = nullptr;
  REQUIRE(git_repository_open(&repo, dir.str().c_str()) == 0);
  for (const char* version : {"2", "4"}) {
    sh(dir.path(), std::string("git update-index --index-version ") + version);
    std::string good = slurp((dir.path() / ".git/index").string());
    auto scan_with = [&](const std::string& index) {
      std::ofstream((dir.path() / ".git/index").string(), std::ios::binary | std::ios::trunc) << index;
      return scan_index(repo, "comp", subtree).kind;
    };
    // Cut short: never clean (what it cannot read, libgit2 judges).
    for (std::size_t cut : {0ul, 5ul, 12ul, 40ul, 62ul, 63ul, 100ul, good.size() / 2, good.size() - 21, good.size() - 1}) {
      INFO("version " << version << ", cut at " << cut);
      CHECK(scan_with(good.substr(0, std::min(cut, good.size()))) != IndexScan::Kind::clean);
    }
    // Bytes overwritten: read within bounds whatever they say (the sanitizer
    // pass checks). Like git, the scan does not verify the checksum, so a
    // flip where nothing is compared (an object ID, the checksum) may pass.
    for (std::size_t at : {12ul, 60ul, 61ul, 70ul, good.size() / 3, good.size() - 30}) {
      std::string flipped = good;
      for (std::size_t i = at; i < std::min(at + 8, flipped.size()); ++i) flipped[i] = static_cast<char>(0xff);
      scan_with(flipped);
    }
    CHECK(scan_with(good) == IndexScan::Kind::clean);
    std::ofstream((dir.path() / ".git/index").string(), std::ios::binary | std::ios::trunc) << good;
  }
  git_repository_free(repo);
  git_libgit2_shutdown();
}
