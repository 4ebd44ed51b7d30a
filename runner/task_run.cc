// How a task is evaluated (task_run.h): the task's inputs are hashed and
// stored once, then `jobs` threads take calls whose needed calls have
// filed their outputs, each through the call pipeline (call.h) with its
// computation prepared once (task.h). A call that fails marks every call
// downstream of it skipped; the others go on.
#include "runner/task_run.h"

#include <boost/filesystem.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace ce::runner {

namespace fs = boost::filesystem;

const char* to_string(CallState state) {
  switch (state) {
    case CallState::waiting: return "waiting";
    case CallState::running: return "running";
    case CallState::reused: return "reused";
    case CallState::computed: return "computed";
    case CallState::failed: return "failed";
    case CallState::skipped: return "skipped";
    case CallState::would_compute: return "would_compute";
    case CallState::unknown: return "unknown";
  }
  return "unknown";
}

std::string source_path(const TaskRun& run, const TaskSource& source) {
  switch (source.kind) {
    case TaskSource::Kind::input: {
      const auto& i = run.inputs.at(source.index);
      return i.stored_exists ? i.stored : fs::absolute(i.path).lexically_normal().string();
    }
    case TaskSource::Kind::literal:
      return run.literals.at(source.index);
    case TaskSource::Kind::output: {
      const auto& paths = run.calls.at(source.index).output_paths;
      return source.output < paths.size() ? paths[source.output] : std::string();
    }
  }
  return {};
}

namespace {

bool available(CallState s) { return s == CallState::reused || s == CallState::computed; }

class Evaluation {
 public:
  Evaluation(const Task& task, const TaskRunRequest& request, docker::Client& client, TaskEvents& events,
             docker::Cancellation& cancel)
      : task_(task), request_(request), client_(client), events_(events), cancel_(cancel) {
    run_.calls.resize(task.calls.size());
    dependents_.resize(task.calls.size());
    for (std::size_t i = 0; i < task.calls.size(); ++i)
      for (std::size_t need : task.calls[i].needs) dependents_[need].push_back(i);
  }

  TaskRun evaluate() {
    auto started = std::chrono::steady_clock::now();
    if (prepare_inputs()) {
      events_.started(run_);
      if (request_.dry_run)
        walk();
      else
        schedule();
      for (const auto& s : task_.outputs) run_.outputs.push_back(source_path(run_, s));
      run_.complete = std::all_of(task_.outputs.begin(), task_.outputs.end(), [&](const TaskSource& s) {
        return s.kind != TaskSource::Kind::output || available(run_.calls[s.index].state);
      });
      run_.cancelled = cancel_.cancelled();
    }
    run_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return std::move(run_);
  }

 private:
  // The task's inputs, hashed (and, for a run, stored); the literals' paths.
  bool prepare_inputs() {
    try {
      if (request_.inputs.size() != task_.input_names.size())
        throw std::runtime_error(task_.dir + ": " + arity_message(task_.input_names, request_.inputs.size()));
      gfs_ = std::make_shared<const Gfs>(request_.host.gfs);
      std::vector<std::string> allowed;
      if (!task_.computations.empty()) allowed = task_.computations[0].prepared->c.comp.host.gfs;
      gfs_->check_allowed(request_.invoker, request_.host.default_gfs, allowed);
      for (std::size_t k = 0; k < request_.inputs.size(); ++k) {
        InputFile f = open_input(*gfs_, task_.input_names[k], request_.inputs[k], request_.invoker,
                                 "task input " + std::to_string(k + 1) + " (" + task_.input_names[k] +
                                     "): " + request_.inputs[k]);
        if (!request_.dry_run)
          store_input(*gfs_, f, "task input " + task_.input_names[k] + " (" + request_.inputs[k] + ")");
        run_.inputs.push_back({request_.inputs[k], f.sha1, f.stored, input_stored(*gfs_, f)});
      }
      for (const auto& l : task_.literals) run_.literals.push_back((fs::path(gfs_->path()) / l).string());
      return true;
    } catch (const std::exception& e) {
      run_.error = e.what();
      return false;
    }
  }

  CallRequest request_for(std::size_t i) {
    const TaskCall& call = task_.calls[i];
    const TaskComputation& c = task_.computations[call.computation];
    CallRequest r;
    r.compdir = c.dir;
    r.computation = c.prepared;
    r.open_gfs = gfs_;
    r.servers = &servers_;
    for (const auto& s : call.inputs) r.inputs.push_back(source_path(run_, s));
    r.dirty = request_.dirty;
    r.swarm = request_.swarm;
    r.start = request_.start;
    r.mode = request_.dry_run ? CallMode::dry_run : CallMode::run;
    r.keep_build_container = request_.keep_build_container;
    r.host = request_.host;
    r.invoker = request_.invoker;
    return r;
  }

  // One call, from its names to its end; the state is set under the lock.
  void evaluate_call(std::size_t i) {
    CallRequest r = request_for(i);
    CallPipeline pipeline(r, events_.call_events(i));
    TaskCallRun named;
    named.input_paths = r.inputs;
    bool go_on = pipeline.prepare();
    named.output_paths = pipeline.output_paths();
    if (go_on) go_on = pipeline.find_done();
    CallResult result = pipeline.result();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      TaskCallRun& run = run_.calls[i];
      run.input_paths = named.input_paths;
      run.output_paths = named.output_paths;
      if (!go_on) {
        run.result = result;
        run.state = result.outcome == Outcome::cached    ? CallState::reused
                    : result.outcome == Outcome::planned ? CallState::would_compute
                                                         : CallState::failed;
        if (run.state != CallState::failed) events_.call_named(i, run);
        return;
      }
    }
    // A place among the calls that compute, if the caller limits them.
    struct Admission {
      CallGate* gate = nullptr;
      ~Admission() {
        if (gate) gate->leave();
      }
    } admission;
    if (request_.gate) {
      if (!request_.gate->enter(cancel_)) {
        std::lock_guard<std::mutex> lock(mutex_);
        TaskCallRun& run = run_.calls[i];
        run.result = result;
        run.result.outcome = Outcome::cancelled;
        run.result.message = "cancelled while it waited for a free place among the calls that compute";
        run.state = CallState::failed;
        return;
      }
      admission.gate = request_.gate;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      TaskCallRun& run = run_.calls[i];
      run.state = CallState::running;
      events_.call_named(i, run);
    }
    docker::OutputSink output = [this, i](docker::StreamKind kind, std::string_view bytes) {
      events_.call_output(i, kind, bytes);
    };
    if (pipeline.plan(client_)) pipeline.run(client_, output, cancel_);
    std::lock_guard<std::mutex> lock(mutex_);
    TaskCallRun& run = run_.calls[i];
    run.result = pipeline.result();
    run.state = run.result.outcome == Outcome::computed ? CallState::computed
                : run.result.outcome == Outcome::cached ? CallState::reused
                                                        : CallState::failed;
    if (run.state == CallState::failed) run.log_tail = log_tail(run.result);
  }

  // The last lines a failed command wrote: its stderr, else its stdout.
  std::string log_tail(const CallResult& result) const {
    for (const auto* path : {&result.stderr_log, &result.stdout_log}) {
      if (path->empty()) continue;
      auto text = read_gfs_file(*gfs_, *path, 64 * 1024);
      if (!text || text->empty()) continue;
      while (!text->empty() && text->back() == '\n') text->pop_back();
      std::size_t at = text->size();
      for (int lines = 0; lines < 10 && at != std::string::npos && at > 0; ++lines) at = text->rfind('\n', at - 1);
      return at == std::string::npos ? *text : text->substr(at + 1);
    }
    return {};
  }

  // Marks the calls downstream of `failed` skipped (under the lock).
  void skip_downstream(std::size_t failed, std::size_t because) {
    std::deque<std::size_t> todo(dependents_[failed].begin(), dependents_[failed].end());
    while (!todo.empty()) {
      std::size_t d = todo.front();
      todo.pop_front();
      TaskCallRun& run = run_.calls[d];
      if (run.state != CallState::waiting) continue;
      run.state = CallState::skipped;
      run.skipped_for = because;
      events_.call_ended(d, run);
      todo.insert(todo.end(), dependents_[d].begin(), dependents_[d].end());
    }
  }

  void schedule() {
    std::vector<std::size_t> missing(task_.calls.size());
    std::deque<std::size_t> ready;
    for (std::size_t i = 0; i < task_.calls.size(); ++i) {
      missing[i] = task_.calls[i].needs.size();
      if (missing[i] == 0) ready.push_back(i);
    }
    std::size_t running = 0;
    std::optional<std::size_t> stopped_by;  // --fail-fast: the first failed call
    std::condition_variable changed;
    auto worker = [&] {
      std::unique_lock<std::mutex> lock(mutex_);
      for (;;) {
        changed.wait(lock, [&] { return !ready.empty() || running == 0; });
        if (ready.empty()) return;  // and nothing runs: nothing more can become ready
        std::size_t i = ready.front();
        ready.pop_front();
        if (stopped_by || cancel_.cancelled()) {
          TaskCallRun& run = run_.calls[i];
          run.state = CallState::skipped;
          run.skipped_for = stopped_by.value_or(i);
          events_.call_ended(i, run);
          continue;
        }
        ++running;
        lock.unlock();
        try {
          evaluate_call(i);
        } catch (const std::exception& e) {  // the pipeline never throws; this is for what surrounds it
          std::lock_guard<std::mutex> relock(mutex_);
          run_.calls[i].state = CallState::failed;
          run_.calls[i].result.message = e.what();
        }
        lock.lock();
        --running;
        TaskCallRun& run = run_.calls[i];
        events_.call_ended(i, run);
        if (available(run.state)) {
          for (std::size_t d : dependents_[i])
            if (--missing[d] == 0 && run_.calls[d].state == CallState::waiting) ready.push_back(d);
        } else {
          skip_downstream(i, i);
          if (request_.fail_fast && !stopped_by) stopped_by = i;
        }
        changed.notify_all();
      }
    };
    std::size_t jobs = std::max<std::size_t>(1, std::min(request_.jobs, task_.calls.size()));
    std::vector<std::thread> threads;
    for (std::size_t t = 1; t < jobs; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    // Anything left waiting was stopped by --fail-fast or the token.
    for (std::size_t i = 0; i < run_.calls.size(); ++i)
      if (run_.calls[i].state == CallState::waiting) {
        run_.calls[i].state = CallState::skipped;
        run_.calls[i].skipped_for = stopped_by.value_or(i);
        events_.call_ended(i, run_.calls[i]);
      }
  }

  // A dry run: every call named in order, as far as the GFS allows; nothing
  // is written.
  void walk() {
    std::map<std::string, std::string> hashed;  // path: SHA-1
    for (std::size_t i = 0; i < task_.calls.size(); ++i) {
      const TaskCall& call = task_.calls[i];
      bool known = std::all_of(call.needs.begin(), call.needs.end(),
                               [&](std::size_t n) { return available(run_.calls[n].state); });
      if (known) {
        evaluate_call(i);
        if (run_.calls[i].state == CallState::failed) events_.call_ended(i, run_.calls[i]);
        continue;
      }
      // A name that depends on an output not computed yet: "???" for it.
      TaskCallRun& run = run_.calls[i];
      std::vector<std::optional<std::string>> sha1s;
      for (const auto& s : call.inputs) {
        if (s.kind == TaskSource::Kind::output && !available(run_.calls[s.index].state)) {
          sha1s.push_back(std::nullopt);
          run.input_paths.push_back(source_path(run_, s));
          continue;
        }
        std::string path = source_path(run_, s);
        run.input_paths.push_back(path);
        if (s.kind == TaskSource::Kind::input) {
          sha1s.push_back(run_.inputs[s.index].sha1);
          continue;
        }
        auto it = hashed.find(path);
        if (it == hashed.end()) {
          try {
            it = hashed.emplace(path, open_input(*gfs_, "", path, request_.invoker, path).sha1).first;
          } catch (const std::exception&) {
            sha1s.push_back(std::nullopt);
            continue;
          }
        }
        sha1s.push_back(it->second);
      }
      const TaskComputation& c = task_.computations[call.computation];
      for (std::size_t k = 0; k < c.contract().outputs.size(); ++k)
        run.output_paths.push_back(output_path_of(*gfs_, c.prepared->c.comp.name, c.prepared->id, k, sha1s));
      run.state = CallState::unknown;
      events_.call_named(i, run);
    }
  }

  const Task& task_;
  const TaskRunRequest& request_;
  docker::Client& client_;
  TaskEvents& events_;
  docker::Cancellation& cancel_;
  std::shared_ptr<const Gfs> gfs_;
  CommandServers servers_;  // the calls' commands, through one exec per container
  std::mutex mutex_;
  TaskRun run_;
  std::vector<std::vector<std::size_t>> dependents_;
};

}  // namespace

TaskRun run_task(const Task& task, const TaskRunRequest& request, docker::Client& client, TaskEvents& events,
                 docker::Cancellation& cancel) {
  return Evaluation(task, request, client, events, cancel).evaluate();
}

}  // namespace ce::runner
