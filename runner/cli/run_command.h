// `ce-run COMPDIR` and `ce-run lint COMPDIR`: a Command turned into a call
// request, the call's result turned into output and an exit code.
#pragma once

#include "runner/call.h"
#include "runner/cli/cli.h"

namespace ce::runner {

int run_computation(const Command& command);
int run_lint(const Command& command);

// Where the global file storage is: --gfs, else $GFSDIR, else the default
// (made when missing). Canonical.
std::string resolve_gfs(const Command& command);

}  // namespace ce::runner
