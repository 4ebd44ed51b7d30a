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

// The process exit code of a call's outcome (docs/cli.md): the command's
// own code when it ran, else ce-run's codes of exit_code::.
int exit_code_for(const CallResult& result);

}  // namespace ce::runner
