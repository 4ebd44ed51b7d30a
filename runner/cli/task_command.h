// `ce-run TASKDIR`, `ce-run log|sym|graph TASKDIR`: the command line around
// a task (runner/task_run.h): CompEval's lines on stdout, a status line and
// failures on stderr, the --report and --junit files, the exit code.
#pragma once

#include "runner/cli/cli.h"

namespace ce::runner {

int run_task_command(const Command& command);
int run_log(const Command& command);
int run_sym(const Command& command);
int run_graph(const Command& command);

}  // namespace ce::runner
