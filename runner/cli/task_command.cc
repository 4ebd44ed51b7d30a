// `ce-run TASKDIR`: the task's calls in CompEval's format on stdout, each
// call's lines together and in the task's order (sub-nodes first), while
// the calls run in parallel; on a terminal a status line on stderr; a
// failed call's last lines with its node's path.
#include "runner/cli/task_command.h"

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <boost/filesystem.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "runner/cli/run_command.h"
#include "runner/cli/signals.h"
#include "runner/cli/terminal_events.h"
#include "runner/task_report.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

// One call's events in a task: its setup output is kept (the last part),
// to be shown if the call fails; warnings are shown once per computation.
class CallLines : public CallEvents {
 public:
  void step_output(const stages::Step&, docker::StreamKind, std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    tail_.append(bytes);
    if (tail_.size() > 16384) tail_.erase(0, tail_.size() - 8192);
  }
  void note(Level level, const std::string& text) override {
    if (level == Level::warning) spdlog::warn("warning: {}: {}", node_, text);
    else if (level == Level::debug) spdlog::debug("{}: {}", node_, text);
  }
  void warning(const std::string& message) override { spdlog::warn("warning: {}: {}", node_, message); }
  std::string tail() {
    std::lock_guard<std::mutex> lock(mutex_);
    return tail_;
  }
  std::string node_;

 private:
  std::mutex mutex_;
  std::string tail_;
};

std::string last_lines(std::string text, int count) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::size_t at = text.size();
  for (int n = 0; n < count && at != std::string::npos && at > 0; ++n) at = text.rfind('\n', at - 1);
  return at == std::string::npos || at == 0 ? text : text.substr(at + 1);
}

const char* state_word(CallState s) {
  return s == CallState::reused || s == CallState::computed ? "ok" : "MISSING";
}

// Prints the task's nodes in post-order as soon as each can be told, and
// keeps the status line.
class TaskPrinter : public TaskEvents {
 public:
  TaskPrinter(const Task& task, const Command& command, bool status_line)
      : task_(task), command_(command), status_line_(status_line), lines_(task.calls.size()),
        started_(std::chrono::steady_clock::now()) {
    for (std::size_t i = 0; i < task.calls.size(); ++i) lines_[i].node_ = task.nodes[task.calls[i].nodes.front()].path;
    if (status_line_) ticker_ = std::thread([this] { tick(); });
  }
  ~TaskPrinter() override { stop_ticker(); }

  void stop_ticker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (ticker_.joinable()) ticker_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    clear_status();
  }

  CallEvents& call_events(std::size_t call) override { return lines_[call]; }

  void started(const TaskRun& run) override {
    std::lock_guard<std::mutex> lock(mutex_);
    inputs_ = run.inputs;
    literals_ = run.literals;
    started_run_ = true;
    flush();
  }

  void call_named(std::size_t call, const TaskCallRun& run) override {
    std::lock_guard<std::mutex> lock(mutex_);
    states_[call] = run;
    named_running_[call] = run.state == CallState::running;
    flush();
  }

  void call_ended(std::size_t call, const TaskCallRun& run) override {
    std::lock_guard<std::mutex> lock(mutex_);
    states_[call] = run;
    if (run.state == CallState::failed) report_failure(call, run);
    flush();
  }

  // Everything not printed yet (after the run), then the task's outputs.
  void finish(const TaskRun& run) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!run.error.empty()) return;  // nothing ran
    for (std::size_t i = 0; i < run.calls.size(); ++i) states_[i] = run.calls[i];
    flush(true);
    clear_status();
    std::printf("\n    Task outputs are:\n");
    for (const auto& o : run.outputs) std::printf("        %s\n", o.c_str());
    std::fflush(stdout);
  }

 private:
  const TaskCallRun* state(std::size_t call) const {
    auto it = states_.find(call);
    return it == states_.end() ? nullptr : &it->second;
  }

  static bool terminal(CallState s) { return s != CallState::waiting && s != CallState::running; }

  bool ready(std::size_t node) const {
    const TaskNode& n = task_.nodes[node];
    if (n.kind != NodeKind::computation) return true;
    const TaskCallRun* s = state(n.call);
    if (!s) return false;
    bool first = task_.calls[n.call].nodes.front() == node;
    return first ? s->state != CallState::waiting : terminal(s->state);
  }

  void flush(bool all = false) {
    bool printed = false;
    while (cursor_ < task_.post_order.size() && (all || (started_run_ && ready(task_.post_order[cursor_])))) {
      if (!printed) clear_status();
      printed = true;
      print_node(task_.post_order[cursor_++]);
    }
    if (printed) std::fflush(stdout);
    draw_status();
  }

  void print_node(std::size_t node) {
    const TaskNode& n = task_.nodes[node];
    std::string indent(static_cast<std::size_t>(4 * (n.depth + 1)), ' ');
    if (n.kind == NodeKind::input) {
      const TaskSource& s = n.passes.front();
      const auto* input = s.index < inputs_.size() ? &inputs_[s.index] : nullptr;
      std::printf("%s%s: INPUT('%s') %s %s\n", indent.c_str(), n.label.c_str(), n.value.c_str(),
                  input ? input->stored.c_str() : "???", input && input->stored_exists ? "ok" : "MISSING");
      return;
    }
    if (n.kind == NodeKind::literal) {
      const TaskSource& s = n.passes.front();
      std::string path = s.index < literals_.size() ? literals_[s.index] : n.value;
      std::printf("%s%s: FILE('%s') %s ok\n", indent.c_str(), n.label.c_str(), n.value.c_str(), path.c_str());
      return;
    }
    std::printf("%s%s (%s)\n", indent.c_str(), n.value.c_str(), n.label.c_str());
    const TaskCallRun* s = state(n.call);
    const TaskCall& call = task_.calls[n.call];
    const auto& outputs = task_.computations[call.computation].contract().outputs;
    CallState st = s ? s->state : CallState::waiting;
    for (std::size_t k : n.selection) {
      std::string path = s && k < s->output_paths.size() ? s->output_paths[k] : "???";
      std::printf("%s`> %s: %s %s\n", indent.c_str(), outputs[k].c_str(), path.c_str(), state_word(st));
    }
    bool first = call.nodes.front() == node;
    if (first && named_running_[n.call]) std::printf("%s`* computing...\n", indent.c_str());
    if (st == CallState::failed && (first || !named_running_[n.call]))
      std::printf("%s`* FAILED\n", indent.c_str());
    if (st == CallState::skipped) std::printf("%s`* skipped: a call it needs failed\n", indent.c_str());
  }

  void report_failure(std::size_t call, const TaskCallRun& run) {
    clear_status();
    std::fflush(stdout);
    const std::string& node = lines_[call].node_;
    const auto& c = task_.computations[task_.calls[call].computation];
    std::string text = run.result.message.empty() ? std::string("failed") : run.result.message;
    std::fprintf(stderr, "ce-run: error: %s (%s): %s\n", node.c_str(), c.name.c_str(), text.c_str());
    std::string tail = run.log_tail;
    const char* what = "its output";
    if (tail.empty() && run.result.outcome == Outcome::setup_failed) {
      tail = last_lines(lines_[call].tail(), 10);
      what = "the setup step's output";
    }
    if (!tail.empty()) {
      std::fprintf(stderr, "ce-run: the last lines of %s:\n", what);
      std::istringstream in(tail);
      for (std::string line; std::getline(in, line);) std::fprintf(stderr, "    | %s\n", line.c_str());
    }
    if (!run.result.stderr_log.empty()) {
      std::string inputs;
      for (const auto& i : command_.inputs) inputs += " " + i;
      std::fprintf(stderr, "ce-run: all of it: ce-run log %s %s%s\n", command_.compdir.c_str(), node.c_str(),
                   inputs.c_str());
    }
    std::fflush(stderr);
  }

  std::string status_text() const {
    std::size_t done = 0, running = 0, failed = 0, skipped = 0;
    for (const auto& [i, s] : states_) {
      done += s.state == CallState::reused || s.state == CallState::computed;
      running += s.state == CallState::running;
      failed += s.state == CallState::failed;
      skipped += s.state == CallState::skipped;
    }
    std::size_t waiting = task_.calls.size() - done - running - failed - skipped;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    char text[200];
    std::snprintf(text, sizeof text, "[ce-run] %zu/%zu calls done, %zu running, %zu waiting, %zu failed%s, %.0f s",
                  done, task_.calls.size(), running, waiting, failed,
                  skipped ? (", " + std::to_string(skipped) + " skipped").c_str() : "", seconds);
    return text;
  }

  void draw_status() {
    if (!status_line_ || stopping_) return;
    std::fprintf(stderr, "\r\033[K%s", status_text().c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void clear_status() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
  void tick() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      draw_status();
      wake_.wait_for(lock, std::chrono::milliseconds(500));
    }
  }

  const Task& task_;
  const Command& command_;
  bool status_line_;
  std::vector<CallLines> lines_;
  std::chrono::steady_clock::time_point started_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread ticker_;
  bool stopping_ = false, drawn_ = false;
  std::map<std::size_t, TaskCallRun> states_;
  std::map<std::size_t, bool> named_running_;
  std::vector<TaskInputRun> inputs_;
  std::vector<std::string> literals_;
  bool started_run_ = false;
  std::size_t cursor_ = 0;
};

// The task, loaded and checked; every problem printed, then thrown.
Task load_checked(const Command& command, const Invoker& invoker, const std::string& gfs, CallMode mode) {
  TaskLoadOptions options;
  options.invoker = invoker;
  options.dirty = command.allow_dirty ? DirtyPolicy::allow : DirtyPolicy::refuse;
  options.mode = mode;
  options.gfs = gfs;
  LoadedTask loaded = load_task(command.compdir, options);
  if (loaded.task) return std::move(*loaded.task);
  for (const auto& p : loaded.problems) std::fprintf(stderr, "ce-run: error: %s\n", p.c_str());
  throw std::runtime_error("the task " + command.compdir + " has " + std::to_string(loaded.problems.size()) +
                           " problem" + (loaded.problems.size() == 1 ? "" : "s") + " (above); nothing was run");
}

std::size_t jobs_of(const Command& command) {
  if (command.jobs > 0) return command.jobs;
  unsigned cores = std::thread::hardware_concurrency();
  return cores ? cores : 1;
}

TaskRunRequest request_of(const Command& command, const Invoker& invoker, const std::string& gfs, bool dry_run) {
  TaskRunRequest request;
  request.inputs = command.inputs;
  request.jobs = jobs_of(command);
  request.fail_fast = command.fail_fast;
  request.dry_run = dry_run;
  request.start = command.incremental ? StartPolicy::from_ancestor : StartPolicy::fresh;
  request.keep_build_container = command.keep_build_container;
  request.dirty = command.allow_dirty ? DirtyPolicy::allow : DirtyPolicy::refuse;
  request.swarm = command.swarm;
  request.host.gfs = gfs;
  request.invoker = invoker;
  return request;
}

// A dry run of the task, for log and graph: the calls named, nothing run.
class NoEvents : public TaskEvents {
 public:
  explicit NoEvents(std::size_t calls) : events_(calls) {}
  CallEvents& call_events(std::size_t call) override { return events_[call]; }

 private:
  std::vector<CallEvents> events_;
};

void write_user_file(const std::string& path, const std::string& text, const Invoker& invoker, const char* what) {
  try {
    as_invoker(invoker, [&] {
      stages::write_atomically(path, text, 0644);
      return -1;
    });
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("cannot write the ") + what + " " + path + ": " + e.what());
  }
}

}  // namespace

int run_task_command(const Command& command) {
  if (!command.command.empty())
    throw std::runtime_error(command.compdir + " is a task (it has workflow/): a task runs its computations' "
                                               "execs, so it takes no command after --");
  if (command.verify)
    throw std::runtime_error("--verify checks one call: give a computation directory, not a task");
  Invoker invoker = invoking_user();
  std::string gfs = resolve_gfs(command);
  Task task = load_checked(command, invoker, gfs, command.dry_run ? CallMode::dry_run : CallMode::run);

  docker::Client client;
  docker::Cancellation cancel;
  std::optional<StopWatch> stop;
  if (!command.dry_run) stop.emplace(cancel);
  bool status_line = ::isatty(STDERR_FILENO) && command.verbosity != Verbosity::quiet;
  TaskRunRequest request = request_of(command, invoker, gfs, command.dry_run);

  TaskRun run;
  {
    TaskPrinter printer(task, command, status_line);
    run = run_task(task, request, client, printer, cancel);
    printer.finish(run);
    printer.stop_ticker();
  }

  int code = task_exit_code(run, command.dry_run);
  std::size_t failed = 0, skipped = 0, reused = 0, computed = 0, pending = 0;
  for (const auto& c : run.calls) {
    failed += c.state == CallState::failed;
    skipped += c.state == CallState::skipped;
    reused += c.state == CallState::reused;
    computed += c.state == CallState::computed;
    pending += c.state == CallState::would_compute || c.state == CallState::unknown;
  }
  if (!run.error.empty()) {
    spdlog::error("error: {}", run.error);
  } else if (run.cancelled && stop) {
    code = stop->signal() == SIGTERM ? 143 : exit_code::interrupted;
    spdlog::error("error: ce-run was interrupted ({}); nothing half-done was filed",
                  stop->signal() == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  if (run.error.empty()) {
    if (command.dry_run)
      spdlog::info("{} call{}: {} done, {} to compute{}", run.calls.size(), run.calls.size() == 1 ? "" : "s", reused,
                   pending, failed ? ", " + std::to_string(failed) + " failed" : std::string());
    else
      spdlog::info("{} call{}: {} reused, {} computed, {} failed, {} skipped ({:.1f} s)", run.calls.size(),
                   run.calls.size() == 1 ? "" : "s", reused, computed, failed, skipped, run.seconds);
  }
  if (!command.report.empty()) write_user_file(command.report, task_report_json(task, run, code), invoker, "report");
  if (!command.junit.empty())
    write_user_file(command.junit, task_junit_xml(task, run, stages::utc_now()), invoker, "JUnit file");
  return code;
}

namespace {

// The task named by a dry run (no engine, nothing written).
TaskRun named_task(const Command& command, const Task& task, const Invoker& invoker, const std::string& gfs) {
  docker::Client client;
  docker::Cancellation cancel;
  NoEvents events(task.calls.size());
  return run_task(task, request_of(command, invoker, gfs, true), client, events, cancel);
}

}  // namespace

int run_log(const Command& command) {
  Invoker invoker = invoking_user();
  std::string gfs = resolve_gfs(command);
  Task task = load_checked(command, invoker, gfs, CallMode::dry_run);
  std::string wanted = fs::path(command.node).lexically_normal().string();
  while (!wanted.empty() && wanted.back() == '/') wanted.pop_back();
  const TaskNode* node = nullptr;
  for (const auto& n : task.nodes)
    if (n.path == wanted || task.shown(n.path) == wanted) node = &n;
  if (!node) {
    std::string known;
    for (const auto& n : task.nodes)
      if (n.kind == NodeKind::computation) known += "\n  " + n.path;
    throw std::runtime_error("no node " + command.node + " in the task " + command.compdir +
                             "; its computation nodes are:" + known);
  }
  if (node->kind != NodeKind::computation)
    throw std::runtime_error(node->path + " is an " + (node->kind == NodeKind::input ? "input" : "literal") +
                             " node: only a computation's call has a log");
  TaskRun run = named_task(command, task, invoker, gfs);
  if (!run.error.empty()) throw std::runtime_error(run.error);
  const TaskCallRun& call = run.calls[node->call];
  if (call.state == CallState::unknown)
    throw std::runtime_error(node->path + " has no name yet: a call it needs has no result in the GFS, so it has "
                                          "never run on these inputs");
  if (call.result.stderr_log.empty())
    throw std::runtime_error(node->path + " has no log in the GFS: its call has not run there (or ran before ce-run "
                                          "kept logs)");
  Gfs store(gfs);
  for (const auto* path : {&call.result.stdout_log, &call.result.stderr_log}) {
    auto text = read_gfs_file(store, *path, std::size_t{64} << 20);
    std::printf("==> %s <==\n%s", path->c_str(), text ? text->c_str() : "");
    if (text && !text->empty() && text->back() != '\n') std::printf("\n");
  }
  std::printf("(%s)\n", call.state == CallState::reused ? "the call's result is in the GFS"
                                                         : "the call's latest run failed: no result is filed");
  return 0;
}

int run_sym(const Command& command) {
  Task task = load_checked(command, invoking_user(), "", CallMode::dry_run);
  std::cout << task_symbolic(task);
  return 0;
}

int run_graph(const Command& command) {
  Invoker invoker = invoking_user();
  std::string dot;
  {
    std::string gfs = command.inputs.empty() ? std::string() : resolve_gfs(command);
    Task task = load_checked(command, invoker, gfs, CallMode::dry_run);
    std::optional<TaskRun> run;
    if (!command.inputs.empty()) {
      run = named_task(command, task, invoker, gfs);
      if (!run->error.empty()) throw std::runtime_error(run->error);
    }
    dot = task_dot(task, run ? &*run : nullptr);
  }
  if (command.output_file.empty()) {
    std::cout << dot;
    return 0;
  }
  std::string format = fs::path(command.output_file).extension().string();
  if (format == ".dot" || format == ".gv") {
    write_user_file(command.output_file, dot, invoker, "graph");
    return 0;
  }
  if (format != ".svg" && format != ".png" && format != ".pdf")
    throw std::runtime_error("-o " + command.output_file + ": the file must end in .svg, .png, .pdf or .dot");
  // Graphviz renders to a pipe; the file is written with the user's rights.
  Poco::Pipe in, out;
  Poco::ProcessHandle dot_process = [&] {
    try {
      return Poco::Process::launch("dot", {"-T" + format.substr(1)}, &in, &out, nullptr);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("cannot run Graphviz's dot (install the graphviz package): ") + e.what());
    }
  }();
  std::string rendered;
  std::thread writer([&] {
    Poco::PipeOutputStream to(in);
    to << dot;
    to.close();
  });
  Poco::PipeInputStream from(out);
  std::ostringstream all;
  all << from.rdbuf();
  writer.join();
  int status = dot_process.wait();
  if (status != 0) throw std::runtime_error("Graphviz's dot failed (exit " + std::to_string(status) + ")");
  write_user_file(command.output_file, all.str(), invoker, "graph");
  return 0;
}

}  // namespace ce::runner
