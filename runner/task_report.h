// What is said of a task and its run, as text: the --report JSON and the
// --junit XML for CI (schemas in docs/cli.md), `ce-run sym`'s nested form
// and `ce-run graph`'s Graphviz dot. The one place each format is spelt,
// for the command line and a service alike.
#pragma once

#include <string>

#include "runner/task_run.h"

namespace ce::runner {

// "reused" | "computed" | "failed" | "skipped" | "would_compute" | "unknown"
// | "waiting" | "running": a call's status in the report.
const char* report_status(CallState state);

// The exit code of `ce-run TASKDIR` for the run (docs/cli.md): 125 for
// ce-run's own failure, 130 when cancelled, 1 when a call failed or the
// task's outputs are not all there, 3 for a dry run that would compute.
int task_exit_code(const TaskRun& run, bool dry_run);

// The task's report, schema version 1 (docs/cli.md). `exit_code` is the
// process's.
std::string task_report_json(const Task& task, const TaskRun& run, int exit_code);

// JUnit XML: one testcase per distinct call (classname the computation,
// name its first node's path). A failed call is a <failure>, a skipped one
// <skipped/>, a reused one says so in <system-out>.
std::string task_junit_xml(const Task& task, const TaskRun& run, const std::string& timestamp);

// "Inputs: 'a', 'b'" and the nested form "(comp (sub INPUT('a'))[0] ...)",
// as CompEval's ce-sym printed them.
std::string task_symbolic(const Task& task);

// The graph of calls in Graphviz dot: task inputs, literals and calls,
// each call coloured by its state (`run` may be null: no states).
std::string task_dot(const Task& task, const TaskRun* run);

}  // namespace ce::runner
