// The computation's identity in Git, through libgit2: the repository whose
// work tree holds COMPDIR (a submodule or linked worktree included), its
// HEAD commit, the tree of COMPDIR in that commit, and what is uncommitted.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace ce::runner {

struct GitIdentity {
  std::string workdir;   // the repository's work tree, with a trailing '/'
  std::string subpath;   // COMPDIR relative to it ("" at the root)
  std::string commit;    // HEAD, 40 hex digits
  std::string branch;    // "main", or "" when HEAD is detached
  std::string tree;      // COMPDIR's tree in HEAD (40 hex digits)
  bool shallow = false;
  // Uncommitted or untracked, non-ignored files under COMPDIR, relative to
  // it. The docker-container file never counts.
  std::vector<std::string> dirty_files;
  // When dirty: a digest of the work tree's content under COMPDIR (HEAD's
  // tree plus every changed file's content), so equal content gives an
  // equal value. Else equal to `tree`.
  std::string content_tree;
};

class GitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws GitError with what to do (not a repository, no commit yet, ...).
GitIdentity identify(const std::string& compdir);

// The computation's ID: 40 hex digits derived from COMPDIR's content alone
//   id = hex(SHA-256("ce-run computation id 1\n" content-tree "\n"))[0:40]
// so a commit that leaves COMPDIR untouched keeps the ID (and its results),
// and a dirty work tree gets an ID of its own content.
std::string computation_id(const GitIdentity& identity);

// Whether `descendant` has `ancestor` in its history (both 40-hex commit
// IDs of the repository holding `dir`). False when either is unknown, e.g.
// missing from a shallow clone.
// COMPDIR's tree at HEAD and at the tip of every local branch (duplicates
// removed), for telling which results the repository can still reach.
std::vector<std::string> branch_trees(const std::string& compdir);

bool is_ancestor(const std::string& dir, const std::string& ancestor, const std::string& descendant);

// Writes the tree `tree` (40 hex digits) of the repository holding `dir`
// into the directory `into` (a descriptor of an empty one): its files
// (0644, or 0755 when executable), directories (0755) and symbolic links,
// owned by this process; a submodule becomes an empty directory. Names are
// created with O_EXCL and never followed. Throws GitError.
void export_tree(const std::string& dir, const std::string& tree, int into);

}  // namespace ce::runner
