// A fast, read-only proof that COMPDIR is clean, in front of libgit2's
// status (git_identity.cc), which alone takes about 2.5 times as long as
// `git status` on 50,000 files: it verifies the index's checksum with the
// slow collision-detecting SHA-1, diffs HEAD's trees against the index
// without the index's cache-tree, and stats every file on one thread.
//
// How it works: .git/index is read directly (versions 2 to 4; the checksum
// is not verified, as git does not). COMPDIR is clean when
//   - the index's cache-tree node for COMPDIR is valid and equals HEAD's
//     tree of COMPDIR (the index matches HEAD there),
//   - every index entry under COMPDIR has exactly the stat data the index
//     records and is not racy (so libgit2 would call it unmodified without
//     reading it), found with fstatat per directory on two threads, and
//   - every other name in COMPDIR's directories is ignored.
// What it cannot prove is handed back: `partial` names the few paths
// libgit2 must examine; `unknown` (conflicts, assume-valid, skip-worktree,
// intent-to-add, submodules, mandatory index extensions, core.ignorecase,
// a tracked directory gone, many changes) means a full libgit2 status.
// Racily clean or only re-stat'ed files always go to libgit2, which hashes
// them, so they never count as dirty. Nothing is ever written.
#pragma once

#include <git2.h>
#include <string>
#include <vector>

namespace ce::runner {

struct IndexScan {
  enum class Kind { clean, partial, unknown };
  Kind kind = Kind::unknown;
  bool index_matches_head = false;  // the cache-tree node for COMPDIR == HEAD's tree
  std::vector<std::string> paths;   // partial: repository-relative paths libgit2 must examine
  std::string why;                  // what made it partial or unknown, for -v
};

// `subpath`: COMPDIR relative to the work tree ("" at the root);
// `head_subtree`: COMPDIR's tree in HEAD.
IndexScan scan_index(git_repository* repo, const std::string& subpath, const git_oid& head_subtree);

}  // namespace ce::runner
