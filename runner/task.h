// A CompEval task (docs/workflows.md), loaded and checked as a whole.
//
//   TASKDIR/inputs          the task's symbolic input names, one a line
//   TASKDIR/workflow/       the root node
//   TASKDIR/computations/   one ce-run computation per directory
//
// A node is a directory with `kind` (computation, input or literal) and
// `value` (the first line of each is read). A computation node's sub-nodes
// are inputs/NN-label (argument slot NN, from 0) or inputs/NN_MM-label
// (slots NN..MM), and its `outputs` file selects (and may reorder) the
// outputs it passes up; without one, all of them in order.
//
// The task's files are the user's: they are read by a process with the
// user's rights (runner/invoker.h), so a task can show nothing of the
// machine that its user could not read. load_task() returns every problem
// at once, each with the node's path; nothing of a task with a problem is
// run.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/call.h"

namespace ce::runner {

enum class NodeKind { computation, input, literal };

// Where an argument of a call, or an output of the task, comes from.
struct TaskSource {
  enum class Kind { input, literal, output };
  Kind kind = Kind::input;
  std::size_t index = 0;   // input: in Task::input_names; literal: in Task::literals; output: the call
  std::size_t output = 0;  // output: the output's index in its computation
};

struct TaskNode {
  NodeKind kind = NodeKind::computation;
  std::string path;   // relative to TASKDIR: "workflow", "workflow/inputs/00-left"
  std::string label;  // "TASK" for the root, else the text after "NN-"
  std::string value;
  std::size_t first_slot = 0, last_slot = 0;  // the parent's argument slots it fills
  int depth = 0;                              // the root's is 0
  std::vector<std::size_t> children;          // computation: the sub-nodes, in name order
  std::vector<std::size_t> selection;         // computation: the outputs passed up, in order
  bool selected = false;                      // computation: by an outputs file (else all, in order)
  std::size_t call = 0;                       // computation: in Task::calls
  std::vector<TaskSource> passes;             // what the node passes up, in order
};

struct TaskComputation {
  std::string name;  // its directory in computations/
  std::string dir;   // TASKDIR/computations/NAME, as shown
  std::shared_ptr<const PreparedComputation> prepared;
  const CallContract& contract() const { return *prepared->contract; }
};

// A distinct call: identical sub-expressions anywhere in the tree are one.
struct TaskCall {
  std::size_t computation = 0;
  std::vector<TaskSource> inputs;  // one a slot
  std::vector<std::size_t> nodes;  // the nodes that make it, in post-order
  std::vector<std::size_t> needs;  // the calls whose outputs it takes, each once
};

struct Task {
  std::string dir;  // TASKDIR as given
  std::vector<std::string> input_names;
  std::vector<std::string> literals;   // paths relative to the GFS
  std::vector<TaskNode> nodes;         // [0] is the root (workflow)
  std::vector<std::size_t> post_order;  // sub-nodes before their node, in name order
  std::vector<TaskComputation> computations;
  std::vector<TaskCall> calls;  // each after every call it needs
  std::vector<TaskSource> outputs;  // the root's

  std::string shown(const std::string& relative) const;  // TASKDIR/relative
};

struct TaskLoadOptions {
  Invoker invoker;
  DirtyPolicy dirty = DirtyPolicy::refuse;
  CallMode mode = CallMode::run;  // a dry run accepts a computation without an exec
  // Where literals are looked for; empty: not checked.
  std::string gfs;
};

struct LoadedTask {
  std::optional<Task> task;           // when there is no problem
  std::vector<std::string> problems;  // "TASKDIR/workflow/kind:1:1: ..." each
};

// Whether `dir` is a task (it holds workflow/), not a computation.
bool is_task(const std::string& dir);

// Reads and checks the whole task. Never throws.
LoadedTask load_task(const std::string& taskdir, const TaskLoadOptions& options);

}  // namespace ce::runner
