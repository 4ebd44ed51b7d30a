// `ce-run COMPDIR`: the run itself, and `ce-run lint`.
#pragma once

#include "runner/cli.h"

namespace ce::runner {

int run_computation(const Command& command);
int run_lint(const Command& command);

// Where the global file storage is: --gfs, else $GFSDIR, else the default.
std::string resolve_gfs(const Command& command);
inline constexpr const char* default_gfs = "/var/lib/ce-run/gfs";
inline constexpr const char* lock_dir = "/var/lib/ce-run/locks";        // root's alone (0700)
inline constexpr const char* staging_root = "/var/lib/ce-run/staging";  // root's alone (0700); gfs.h

}  // namespace ce::runner
