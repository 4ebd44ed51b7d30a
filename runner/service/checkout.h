// A repository at a commit, for a run that names one (or a branch): the
// commit checked out with its submodules at their recorded commits, by
// libgit2 with the user's rights, into a directory of the user's. Objects
// are borrowed from the repository (and its submodules' repositories)
// through Git's alternates, not copied; each commit is checked out once and
// kept for later runs of it, so its container (one per commit) is reused.
#pragma once

#include <string>

#include "runner/invoker.h"

namespace ce::runner::service {

struct Checkout {
  std::string dir;     // ROOT/UID/REPO/COMMIT/NAME (NAME: the repository's directory name)
  std::string commit;  // 40 hex digits
};

// `rev` is a commit ID (4 to 40 hex digits) or a branch of `repository` (a
// work tree). `root` is root's (0711): the user's directory in it is made
// on first use. Throws std::runtime_error saying what is wrong.
Checkout check_out(const std::string& repository, const std::string& rev, const std::string& root,
                   const Invoker& invoker);

}  // namespace ce::runner::service
