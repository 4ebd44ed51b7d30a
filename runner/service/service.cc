#include "runner/service/service.h"

#include <Poco/JSON/Array.h>
#include <boost/filesystem.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "docker/client.h"
#include "runner/call.h"
#include "runner/container_mapping.h"
#include "runner/fleet.h"
#include "runner/service/checkout.h"
#include "runner/task.h"
#include "runner/task_report.h"
#include "runner/task_run.h"

namespace ce::runner::service {

namespace fs = boost::filesystem;
using Poco::JSON::Array;
using Poco::JSON::Object;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hms() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[16];
  std::snprintf(text, sizeof text, "%02d:%02d:%02dZ", tm.tm_hour, tm.tm_min, tm.tm_sec);
  return text;
}

// Admission of computing calls on the local engine: at most `limit` at once,
// the others in the order they came.
class CallSlots : public CallGate {
 public:
  explicit CallSlots(std::size_t limit) : limit_(limit) {}
  bool enter(docker::Cancellation& cancel) override {
    auto wake = cancel.on_cancel([this] {
      std::lock_guard<std::mutex> lock(mutex_);
      changed_.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex_);
    std::uint64_t ticket = next_ticket_++;
    waiting_.push_back(ticket);
    changed_.wait(lock, [&] { return cancel.cancelled() || (waiting_.front() == ticket && in_use_ < limit_); });
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
    changed_.notify_all();  // the next in line may be at the front now
    if (cancel.cancelled()) return false;
    ++in_use_;
    return true;
  }
  void leave() override {
    std::lock_guard<std::mutex> lock(mutex_);
    --in_use_;
    changed_.notify_all();
  }
  std::size_t waiting() {
    std::lock_guard<std::mutex> lock(mutex_);
    return waiting_.size();
  }
  std::size_t in_use() {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_use_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t limit_, in_use_ = 0;
  std::uint64_t next_ticket_ = 0;
  std::deque<std::uint64_t> waiting_;
};

// Appends to a log file of root's (the state directory's).
class LogFile {
 public:
  explicit LogFile(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) {}
  ~LogFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void append(std::string_view bytes) {
    while (fd_ >= 0 && !bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk: the log is cut short, the run goes on
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
};

// The histogram of computed calls' durations (GET /metrics).
constexpr double duration_buckets[] = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800};

}  // namespace

// What the service counts since it started.
struct ServiceCounters {
  std::int64_t calls_computed = 0, calls_reused = 0, calls_failed = 0;
  std::int64_t runs_submitted = 0, runs_started = 0;
  std::int64_t durations[std::size(duration_buckets) + 1] = {};
  double duration_sum = 0;
  std::int64_t duration_count = 0;
};

// A run being run: its token, its logs, its calls' states.
struct ActiveRun {
  docker::Cancellation cancel;
  std::atomic<bool> cancelled_by_user{false};
  std::string dir;  // state/logs/ID
  std::unique_ptr<LogFile> run_log;
  std::map<int, std::unique_ptr<LogFile>> call_logs;
  std::set<int> ended_calls;
  std::map<int, CallRecord> running;  // the calls computing now
};

struct Service::Impl {
  ServiceSettings settings;
  std::string state, logs_dir, uploads_dir, checkouts_dir;
  std::string gfs;
  int lock_fd = -1;
  std::unique_ptr<Store> store;
  docker::Client client;
  std::size_t calls_limit = 1;
  std::unique_ptr<CallSlots> slots;

  std::mutex mutex;  // everything below
  std::condition_variable queue_changed, logs_changed;
  std::deque<std::int64_t> queue;
  std::map<std::int64_t, std::shared_ptr<ActiveRun>> active;
  std::vector<std::thread> workers;
  std::vector<std::thread> waiters;  // runs waiting for the engine to come back
  bool stopping = false, started = false;
  ServiceCounters counters;

  explicit Impl(ServiceSettings s) : settings(std::move(s)) {}

  void log(LogLevel level, const std::string& text) {
    if (settings.log) settings.log(level, text);
  }

  std::string log_path(std::int64_t id, int call) const {
    return logs_dir + "/" + std::to_string(id) + "/" + (call < 0 ? "run.log" : "call-" + std::to_string(call) + ".log");
  }

  // Appends to a run's own log, or a call's (under no lock of the caller's).
  void append(const std::shared_ptr<ActiveRun>& run, int call, std::string_view bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (call < 0) {
        run->run_log->append(bytes);
      } else {
        auto& file = run->call_logs[call];
        if (!file) file = std::make_unique<LogFile>(run->dir + "/call-" + std::to_string(call) + ".log");
        file->append(bytes);
      }
    }
    logs_changed.notify_all();
  }
  void line(const std::shared_ptr<ActiveRun>& run, int call, const std::string& text) {
    append(run, call, "[" + hms() + "] " + text + "\n");
  }

  Invoker invoker_of(const std::string& user) {
    Invoker who;
    auto known = settings.tokens ? settings.tokens->users.find(user) : decltype(settings.tokens->users.end()){};
    if (settings.tokens && known != settings.tokens->users.end())
      who = known->second;
    else
      who = user_named(user);
    if (who.root()) throw std::runtime_error("the user '" + user + "' is root: the service never runs calls as root");
    who.host_conf = settings.host_conf;
    return who;
  }

  void worker();
  void execute(std::int64_t id, const std::shared_ptr<ActiveRun>& run);
  void run_computation(RunRecord& r, const std::shared_ptr<ActiveRun>& active_run, const std::string& dir,
                       const RunSpec& spec, const std::vector<std::string>& inputs, const Invoker& invoker,
                       bool& engine_lost);
  void run_task_at(RunRecord& r, const std::shared_ptr<ActiveRun>& active_run, const std::string& dir,
                   const RunSpec& spec, const std::vector<std::string>& inputs, const Invoker& invoker,
                   bool& engine_lost);
  void count_call(const CallResult& result, CallState state);
  std::string resolve_repository(const std::string& repository, const Invoker& invoker);
  std::string resolve_dir(const std::string& repository, const std::string& path, const Invoker& invoker);
  std::string resolve_input(const std::string& input, const Invoker& invoker);
  std::string save_upload(const InputSpec& input, std::size_t index, const std::string& dir, const Invoker& invoker);
  RunRecord record_for(const std::string& user, const RunSpec& spec, const Invoker& invoker, const std::string& hook);
  void enqueue(const std::vector<RunRecord>& runs);
};

// ---------------------------------------------------------------------------
// Paths a request names: under the configured roots, as the user sees them.

namespace {

bool under(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

// The real path of `path` as the invoker resolves it (their permissions on
// every directory on the way, every symbolic link followed); throws
// ApiError 400 with the system's reason.
std::string real_path_as(const Invoker& invoker, const std::string& path, bool directory, const std::string& what) {
  stages::Fd fd;
  try {
    // A file is opened for reading (the user must be able to read it); a
    // FIFO must not hang the open, and only a regular file is an input.
    fd = as_invoker(invoker, [&] {
      int flags = directory ? O_PATH | O_DIRECTORY | O_CLOEXEC : O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
      int opened = ::open(path.c_str(), flags);
      if (opened < 0) throw std::runtime_error(std::strerror(errno));
      struct stat st {};
      if (!directory && (::fstat(opened, &st) != 0 || !S_ISREG(st.st_mode))) {
        ::close(opened);
        throw std::runtime_error("not a regular file");
      }
      return opened;
    });
  } catch (const std::exception& e) {
    throw ApiError(400, what + " " + path + ": " + e.what());
  }
  char buffer[PATH_MAX + 1];
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t n = ::readlink(link.c_str(), buffer, PATH_MAX);
  if (n <= 0) throw ApiError(500, "cannot tell where " + path + " is: " + std::strerror(errno));
  return std::string(buffer, static_cast<std::size_t>(n));
}

// `path` under one of `roots` as named, then (opened with the invoker's
// rights) where it really leads: that real path, or refuse(the path that
// is outside) thrown.
std::string real_under_roots(const Invoker& invoker, const std::string& path, bool directory, const std::string& what,
                             const std::vector<std::string>& roots,
                             const std::function<ApiError(const std::string&)>& refuse) {
  auto in_roots = [&](const std::string& p) {
    return std::any_of(roots.begin(), roots.end(), [&](const std::string& root) { return under(p, root); });
  };
  if (!in_roots(path)) throw refuse(path);
  std::string real = real_path_as(invoker, path, directory, what);
  if (!in_roots(real)) throw refuse(real);
  return real;
}

std::string roots_text(const std::vector<std::string>& roots) {
  std::string out;
  for (const auto& r : roots) out += (out.empty() ? "" : ", ") + r;
  return out.empty() ? "none (service.conf names none)" : out;
}

}  // namespace

std::string Service::Impl::resolve_repository(const std::string& repository, const Invoker& invoker) {
  return real_under_roots(invoker, repository, true, "the repository", settings.conf.repository_roots,
                          [&](const std::string& real) {
                            return ApiError(403, "the repository " + repository +
                                                     (real != repository ? " (" + real + ")" : "") +
                                                     " is not under a repository root of the service's (" +
                                                     roots_text(settings.conf.repository_roots) +
                                                     "); ask root to add one to " + settings.conf.origin);
                          });
}

std::string Service::Impl::resolve_dir(const std::string& repository, const std::string& path,
                                       const Invoker& invoker) {
  if (path.empty()) return repository;
  std::string dir = repository + "/" + path;
  std::string real = real_path_as(invoker, dir, true, "the directory");
  if (!under(real, repository))
    throw ApiError(403, path + " leads out of the repository " + repository + " (to " + real +
                            "): a computation or task must lie in it");
  return dir;
}

std::string Service::Impl::resolve_input(const std::string& input, const Invoker& invoker) {
  std::string path = input[0] == '/' ? input : gfs + "/" + input;
  std::vector<std::string> roots = settings.conf.input_roots;
  roots.push_back(gfs);
  roots.push_back(uploads_dir);
  return real_under_roots(invoker, path, false, "the input", roots, [&](const std::string& real) {
    return ApiError(403, "the input " + input + (real != path ? " (" + real + ")" : "") +
                             " is not in the GFS nor under an input root of the service's (" +
                             roots_text(settings.conf.input_roots) + "); upload it, or ask root to add a root to " +
                             settings.conf.origin);
  });
}

// An uploaded input, kept where the user can read it and nobody else can
// change it: a file of the user's (0400) in a directory of root's.
std::string Service::Impl::save_upload(const InputSpec& input, std::size_t index, const std::string& dir,
                                       const Invoker& invoker) {
  std::string path = dir + "/" + std::to_string(index) + "-" + input.name;
  stages::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400));
  if (fd.get() < 0) throw std::runtime_error("cannot keep the upload " + path + ": " + std::strerror(errno));
  std::string_view bytes = input.content;
  while (!bytes.empty()) {
    ssize_t n = ::write(fd.get(), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("cannot keep the upload " + path + ": " + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd.get()) != 0 || ::fchown(fd.get(), invoker.uid, invoker.gid) != 0)
    throw std::runtime_error("cannot keep the upload " + path + ": " + std::strerror(errno));
  return path;
}

RunRecord Service::Impl::record_for(const std::string& user, const RunSpec& spec, const Invoker& invoker,
                                    const std::string& hook) {
  RunRecord r;
  r.user = user;
  r.repository = resolve_repository(spec.repository, invoker);
  r.path = spec.path;
  r.ref = spec.branch;
  r.commit = spec.commit;
  r.hook = hook;
  // A task or a computation: decided now for the work tree; a commit's
  // checkout is looked at when it runs.
  if (spec.commit.empty() && spec.branch.empty()) {
    std::string dir = resolve_dir(r.repository, spec.path, invoker);
    r.kind = is_task(dir) ? "task" : "computation";
  } else {
    r.kind.clear();  // told when it runs: the commit is checked out then
  }
  RunSpec stored = spec;
  stored.repository = r.repository;
  for (auto& input : stored.inputs)
    if (!input.uploaded()) input.path = resolve_input(input.path, invoker);
  r.request = run_spec_json(stored);
  r.submitted = now_seconds();
  return r;
}

void Service::Impl::enqueue(const std::vector<RunRecord>& runs) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& r : runs) queue.push_back(r.id);
    counters.runs_submitted += static_cast<std::int64_t>(runs.size());
  }
  queue_changed.notify_all();
  logs_changed.notify_all();
}

// ---------------------------------------------------------------------------
// Running a run.

namespace {

// A call's events as lines of its log.
class LogEvents : public CallEvents {
 public:
  LogEvents(Service::Impl& impl, std::shared_ptr<ActiveRun> run, int call)
      : impl_(impl), run_(std::move(run)), call_(call) {}
  void step_started(const stages::Step& step, stages::StepStatus status) override {
    impl_.line(run_, call_, describe(step) + (status == stages::StepStatus::built ? " building" : " running"));
  }
  void step_output(const stages::Step&, docker::StreamKind, std::string_view bytes) override {
    impl_.append(run_, call_, bytes);
  }
  void step_finished(const stages::Step& step, stages::StepStatus status, double seconds) override {
    if (status == stages::StepStatus::cached) {
      impl_.line(run_, call_, describe(step) + " cached");
    } else if (status == stages::StepStatus::built || status == stages::StepStatus::ran) {
      char text[64];
      std::snprintf(text, sizeof text, " %s in %.1f s", stages::to_string(status), seconds);
      impl_.line(run_, call_, describe(step) + text);
    }
  }
  void warning(const std::string& message) override { impl_.line(run_, call_, "warning: " + message); }
  void note(Level level, const std::string& text) override {
    if (level == Level::debug) return;
    impl_.line(run_, call_, (level == Level::warning ? "warning: " : "") + text);
  }
  void diagnostics(const stages::SetupScript& script, const std::vector<stages::Diagnostic>& warnings) override {
    script_ = &script;
    for (const auto& w : warnings)
      impl_.line(run_, call_, script.origin + ":" + std::to_string(w.line) + ":" + std::to_string(w.column) +
                                  ": warning: " + w.message);
  }

 private:
  std::string describe(const stages::Step& step) const {
    std::string what = step.kind == stages::StepKind::stage ? "stage " + std::to_string(step.stage_number)
                                                            : "everytime step " + std::to_string(step.index);
    return script_ ? what + " (" + script_->lines_of(step) + ")" : what;
  }
  Service::Impl& impl_;
  std::shared_ptr<ActiveRun> run_;
  int call_;
  const stages::SetupScript* script_ = nullptr;
};

const char* call_state_word(const CallResult& result) {
  switch (result.outcome) {
    case Outcome::cached: return report_status(CallState::reused);
    case Outcome::computed: return report_status(CallState::computed);
    default: return report_status(CallState::failed);
  }
}

std::string outputs_json(const std::vector<std::string>& paths) {
  Array::Ptr a = new Array;
  for (const auto& p : paths) a->add(p);
  std::ostringstream out;
  a->stringify(out);
  return out.str();
}

std::string call_summary(const CallResult& result) {
  std::string text = to_string(result.outcome);
  if (result.outcome == Outcome::command_failed || result.outcome == Outcome::setup_failed)
    text += " (exit " + std::to_string(result.exit_code) + ")";
  if (!result.message.empty()) text += ": " + result.message;
  return text;
}

}  // namespace

void Service::Impl::count_call(const CallResult& result, CallState state) {
  std::lock_guard<std::mutex> lock(mutex);
  if (state == CallState::reused) {
    ++counters.calls_reused;
  } else if (state == CallState::computed) {
    ++counters.calls_computed;
    double seconds = result.facts.seconds;
    std::size_t bucket = 0;
    while (bucket < std::size(duration_buckets) && seconds > duration_buckets[bucket]) ++bucket;
    ++counters.durations[bucket];
    counters.duration_sum += seconds;
    ++counters.duration_count;
  } else if (state == CallState::failed) {
    ++counters.calls_failed;
  }
}

void Service::Impl::run_computation(RunRecord& r, const std::shared_ptr<ActiveRun>& run, const std::string& dir,
                                    const RunSpec& spec, const std::vector<std::string>& inputs,
                                    const Invoker& invoker, bool& engine_lost) {
  CallRequest request;
  request.compdir = dir;
  request.inputs = inputs;
  request.dirty = spec.allow_dirty ? DirtyPolicy::allow : DirtyPolicy::refuse;
  request.swarm = settings.conf.swarm;
  request.host.gfs = gfs;
  request.host.supervisor = settings.supervisor;
  request.invoker = invoker;

  CallRecord call;
  call.index = 0;
  call.node = r.path.empty() ? "." : r.path;
  call.computation = fs::path(dir).filename().string();
  call.state = report_status(CallState::waiting);
  store->put_call(r.id, call);

  LogEvents events(*this, run, 0);
  docker::OutputSink sink = [&](docker::StreamKind, std::string_view bytes) { append(run, 0, bytes); };
  CallPipeline pipeline(request, events);
  bool go_on = pipeline.prepare() && pipeline.find_done();
  bool admitted = false;
  if (go_on && !settings.conf.swarm) {
    auto asked = std::chrono::steady_clock::now();
    admitted = slots->enter(run->cancel);
    go_on = admitted;
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    if (waited >= 0.1) {
      char text[96];
      std::snprintf(text, sizeof text, "waited %.1f s for a place among the %zu calls that compute at once", waited,
                    calls_limit);
      line(run, 0, text);
    }
  }
  if (go_on) {
    call.state = report_status(CallState::running);
    call.started = now_seconds();
    store->put_call(r.id, call);
    {
      std::lock_guard<std::mutex> lock(mutex);
      run->running[0] = call;
    }
    if (pipeline.plan(client)) pipeline.run(client, sink, run->cancel);
    {
      std::lock_guard<std::mutex> lock(mutex);
      run->running.erase(0);
    }
  }
  if (admitted) slots->leave();
  CallResult result = pipeline.result();
  if (!go_on && result.outcome != Outcome::cached && run->cancel.cancelled()) result.outcome = Outcome::cancelled;
  int code = exit_code_for(result);
  CallState state = result.outcome == Outcome::cached     ? CallState::reused
                    : result.outcome == Outcome::computed ? CallState::computed
                                                          : CallState::failed;
  count_call(result, state);
  call.state = call_state_word(result);
  call.ended = now_seconds();
  call.report = report_json(result, code);
  store->put_call(r.id, call);
  line(run, 0, "call " + call_summary(result));
  {
    std::lock_guard<std::mutex> lock(mutex);
    run->ended_calls.insert(0);
  }
  std::vector<std::string> outputs;
  for (const auto& o : result.outputs) outputs.push_back(o.path);
  r.outputs = outputs_json(outputs);
  r.exit_code = code;
  r.error = result.outcome == Outcome::cached || result.outcome == Outcome::computed ? "" : result.message;
  r.state = code == 0 ? run_state::succeeded : run_state::failed;
  if (result.outcome == Outcome::cancelled) r.state = run_state::cancelled;
  if (!result.facts.commit.empty()) r.commit = result.facts.commit;
  engine_lost = result.outcome == Outcome::engine_lost;
}

namespace {

// A task's events: each call's log, its record in the store as it goes.
class TaskRecorder : public TaskEvents {
 public:
  TaskRecorder(Service::Impl& impl, std::shared_ptr<ActiveRun> run, const Task& task, std::int64_t id)
      : impl_(impl), run_(run), task_(task), id_(id) {
    for (std::size_t i = 0; i < task.calls.size(); ++i) {
      events_.push_back(std::make_unique<LogEvents>(impl, run, static_cast<int>(i)));
      CallRecord c;
      c.index = static_cast<int>(i);
      c.node = task.nodes[task.calls[i].nodes.front()].path;
      c.computation = task.computations[task.calls[i].computation].name;
      c.state = report_status(CallState::waiting);
      for (std::size_t n : task.calls[i].needs) c.needs.push_back(static_cast<int>(n));
      records_.push_back(c);
      impl_.store->put_call(id_, c);
    }
  }
  CallEvents& call_events(std::size_t call) override { return *events_[call]; }
  void call_named(std::size_t call, const TaskCallRun& run) override {
    CallRecord c = update(call, run);
    if (run.state == CallState::running) {
      impl_.line(run_, static_cast<int>(call), "computing " + c.node);
      std::lock_guard<std::mutex> lock(impl_.mutex);
      run_->running[static_cast<int>(call)] = c;
    }
  }
  void call_ended(std::size_t call, const TaskCallRun& run) override {
    CallRecord c = update(call, run);
    impl_.count_call(run.result, run.state);
    std::string what = report_status(run.state);
    if (run.state == CallState::failed) what += ": " + call_summary(run.result);
    if (run.state == CallState::skipped) what += " (a call it needs failed)";
    impl_.line(run_, static_cast<int>(call), "call " + what);
    impl_.line(run_, -1, c.node + " " + what);
    std::lock_guard<std::mutex> lock(impl_.mutex);
    run_->running.erase(static_cast<int>(call));
    run_->ended_calls.insert(static_cast<int>(call));
  }
  void call_output(std::size_t call, docker::StreamKind, std::string_view bytes) override {
    impl_.append(run_, static_cast<int>(call), bytes);
  }

 private:
  CallRecord update(std::size_t call, const TaskCallRun& run) {
    std::lock_guard<std::mutex> lock(mutex_);
    CallRecord& c = records_[call];
    c.state = report_status(run.state);
    if (run.state == CallState::running) c.started = now_seconds();
    bool ended = run.state != CallState::running && run.state != CallState::waiting;
    if (ended) {
      c.ended = now_seconds();
      if (run.state != CallState::skipped) c.report = report_json(run.result, exit_code_for(run.result));
    }
    impl_.store->put_call(id_, c);
    return c;
  }
  Service::Impl& impl_;
  std::shared_ptr<ActiveRun> run_;
  const Task& task_;
  std::int64_t id_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<LogEvents>> events_;
  std::vector<CallRecord> records_;
};

}  // namespace

void Service::Impl::run_task_at(RunRecord& r, const std::shared_ptr<ActiveRun>& run, const std::string& dir,
                                const RunSpec& spec, const std::vector<std::string>& inputs, const Invoker& invoker,
                                bool& engine_lost) {
  TaskLoadOptions options;
  options.invoker = invoker;
  options.dirty = spec.allow_dirty ? DirtyPolicy::allow : DirtyPolicy::refuse;
  options.gfs = gfs;
  LoadedTask loaded = load_task(dir, options);
  if (!loaded.task) {
    std::string problems;
    for (const auto& p : loaded.problems) problems += (problems.empty() ? "" : "\n") + p;
    throw std::runtime_error("the task has problems, so nothing of it ran:\n" + problems);
  }
  const Task& task = *loaded.task;
  if (inputs.size() != task.input_names.size())
    throw std::runtime_error("the task takes " + std::to_string(task.input_names.size()) + " input" +
                             (task.input_names.size() == 1 ? "" : "s") + ", and the request gives " +
                             std::to_string(inputs.size()));
  TaskRunRequest request;
  request.inputs = inputs;
  request.jobs = spec.jobs > 0 ? static_cast<std::size_t>(spec.jobs) : settings.conf.swarm ? 64 : calls_limit;
  request.fail_fast = spec.fail_fast;
  request.dirty = options.dirty;
  request.swarm = settings.conf.swarm;
  request.gate = settings.conf.swarm ? nullptr : slots.get();
  request.host.gfs = gfs;
  request.host.supervisor = settings.supervisor;
  request.invoker = invoker;
  TaskRecorder recorder(*this, run, task, r.id);
  TaskRun result = run_task(task, request, client, recorder, run->cancel);
  int code = task_exit_code(result, false);
  r.exit_code = code;
  r.outputs = outputs_json(result.outputs);
  r.error = result.error;
  r.state = code == 0 ? run_state::succeeded : run_state::failed;
  if (result.cancelled) r.state = run_state::cancelled;
  engine_lost = std::any_of(result.calls.begin(), result.calls.end(),
                            [](const TaskCallRun& c) { return c.result.outcome == Outcome::engine_lost; });
  if (r.commit.empty() && !task.computations.empty()) r.commit = task.computations[0].prepared->identity.commit;
}

void Service::Impl::execute(std::int64_t id, const std::shared_ptr<ActiveRun>& run) {
  std::optional<RunRecord> found = store->run(id, false);
  if (!found || finished_state(found->state)) {
    std::lock_guard<std::mutex> lock(mutex);
    active.erase(id);
    return;
  }
  RunRecord r = *found;
  run->dir = logs_dir + "/" + std::to_string(id);
  ::mkdir(run->dir.c_str(), 0700);
  {
    std::lock_guard<std::mutex> lock(mutex);
    run->run_log = std::make_unique<LogFile>(run->dir + "/run.log");
    ++counters.runs_started;
  }
  r.state = run_state::running;
  r.started = now_seconds();
  r.ended = 0;
  r.exit_code = -1;
  r.error.clear();
  ++r.attempts;
  store->clear_calls(id);
  store->update_run(r);
  line(run, -1, "run " + std::to_string(id) + " started" +
                    (r.attempts > 1 ? " (attempt " + std::to_string(r.attempts) + ")" : "") + " as " + r.user);

  bool engine_lost = false;
  std::vector<std::string> uploads;
  try {
    RunSpec spec = run_spec_from_json(r.request);
    Invoker invoker = invoker_of(r.user);
    std::string repository = resolve_repository(spec.repository, invoker);
    std::string top = repository;
    if (!spec.commit.empty() || !spec.branch.empty()) {
      Checkout checkout = check_out(repository, spec.branch.empty() ? spec.commit : spec.branch, checkouts_dir,
                                    invoker);
      r.commit = checkout.commit;
      top = checkout.dir;
      line(run, -1, "checked out " + checkout.commit + " in " + checkout.dir);
    }
    std::string dir = resolve_dir(top, spec.path, invoker);
    std::vector<std::string> inputs;
    for (const auto& input : spec.inputs) {
      inputs.push_back(resolve_input(input.path, invoker));
      if (under(input.path, uploads_dir)) uploads.push_back(input.path);
    }
    r.kind = is_task(dir) ? "task" : "computation";
    line(run, -1, (r.kind == "task" ? "task " : "computation ") + dir);
    if (r.kind == "task")
      run_task_at(r, run, dir, spec, inputs, invoker, engine_lost);
    else
      run_computation(r, run, dir, spec, inputs, invoker, engine_lost);
  } catch (const ApiError& e) {
    r.error = e.what();
    r.state = run_state::failed;
    r.exit_code = 125;
  } catch (const std::exception& e) {
    r.error = e.what();
    r.state = run_state::failed;
    r.exit_code = 125;
  }

  bool by_user = run->cancelled_by_user.load();
  bool by_stop = run->cancel.cancelled() && !by_user;
  bool again = false;
  if (by_user) {
    r.state = run_state::cancelled;
    r.exit_code = 130;
    r.error = "cancelled by " + r.user + "; nothing half-done was filed";
  } else if (by_stop) {
    again = true;
    line(run, -1, "the service stops: the run starts again when it does; nothing half-done was filed");
  } else if (engine_lost && r.attempts < 3) {
    again = true;
    line(run, -1, "the Docker engine went away during the run: it runs again once the engine answers");
  }
  if (again) {
    r.state = run_state::queued;
    r.ended = 0;
    r.exit_code = -1;
  } else {
    r.ended = now_seconds();
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", r.ended - r.started);
    log(r.state == run_state::succeeded ? LogLevel::info : LogLevel::warning,
        "run " + std::to_string(id) + " (" + r.user + ", " + (r.kind.empty() ? "run" : r.kind) + " " + r.repository +
            (r.path.empty() ? "" : "/" + r.path) + ") " + r.state + " in " + took +
            (r.error.empty() ? "" : ": " + r.error.substr(0, 200)));
    if (!r.error.empty()) line(run, -1, "error: " + r.error);
    line(run, -1, "run " + std::to_string(id) + " " + r.state + " (exit " + std::to_string(r.exit_code) + ")");
    for (const auto& path : uploads) ::unlink(path.c_str());
    if (!uploads.empty()) ::rmdir(fs::path(uploads.front()).parent_path().string().c_str());
  }
  store->update_run(r);
  {
    std::lock_guard<std::mutex> lock(mutex);
    active.erase(id);
    if (again && !stopping) {
      // After a lost engine: back at the front once it answers (at most
      // five minutes later; then it is queued anyway, and fails or runs).
      waiters.emplace_back([this, id] {
        for (int i = 0; i < 600; ++i) {
          try {
            client.ping();
            break;
          } catch (const std::exception&) {
          }
          std::unique_lock<std::mutex> lock(mutex);
          if (queue_changed.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping; })) return;
        }
        std::lock_guard<std::mutex> lock(mutex);
        queue.push_front(id);
        queue_changed.notify_all();
      });
    }
  }
  logs_changed.notify_all();
}

void Service::Impl::worker() {
  for (;;) {
    std::int64_t id = 0;
    std::shared_ptr<ActiveRun> run;
    {
      std::unique_lock<std::mutex> lock(mutex);
      queue_changed.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      id = queue.front();
      queue.pop_front();
      // Active from here: a DELETE now reaches its token, not the queue.
      run = active[id] = std::make_shared<ActiveRun>();
    }
    try {
      execute(id, run);
    } catch (const std::exception& e) {
      log(LogLevel::error, "run " + std::to_string(id) + ": " + e.what());
      std::lock_guard<std::mutex> lock(mutex);
      active.erase(id);
    }
  }
}

// ---------------------------------------------------------------------------
// The service.

namespace {

void make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot make " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::runtime_error(path + " is not a directory");
  if (::geteuid() == 0 && st.st_uid != 0)
    throw std::runtime_error(path + " belongs to uid " + std::to_string(st.st_uid) +
                             ", not root: the service's state must be root's alone; chown -R root " + path);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    throw std::runtime_error(path + " is writable by group or others; chmod go-w " + path);
  ::chmod(path.c_str(), mode);
}

}  // namespace

Service::Service(ServiceSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {
  Impl& m = *impl_;
  const ServiceConf& conf = m.settings.conf;
  m.state = conf.state;
  make_dir(m.state, 0711);
  m.lock_fd = ::open((m.state + "/service.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (m.lock_fd < 0 || ::flock(m.lock_fd, LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error("another ce-run serve uses the state directory " + m.state +
                             " (or it cannot be locked); stop it first, or give another --state");
  m.logs_dir = m.state + "/logs";
  m.uploads_dir = m.state + "/uploads";
  m.checkouts_dir = m.state + "/checkouts";
  make_dir(m.logs_dir, 0700);
  make_dir(m.uploads_dir, 0711);
  make_dir(m.checkouts_dir, 0711);
  std::string gfs = conf.gfs.empty() ? std::string(default_gfs) : conf.gfs;
  if (!fs::is_directory(gfs))
    throw std::runtime_error("the GFS " + gfs + " is not a directory; create it, or set gfs in " + conf.origin);
  m.gfs = fs::canonical(gfs).string();
  m.store = std::make_unique<Store>(m.state + "/runs.sqlite");
  unsigned cores = m.settings.cores ? m.settings.cores : std::max(1u, std::thread::hardware_concurrency());
  m.calls_limit = conf.max_calls > 0 ? static_cast<std::size_t>(conf.max_calls) : 2 * cores;
  m.slots = std::make_unique<CallSlots>(m.calls_limit);
}

Service::~Service() {
  stop();
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);
}

void Service::start() {
  Impl& m = *impl_;
  std::vector<RunRecord> left = m.store->unfinished();
  for (auto& r : left) {
    if (r.state == run_state::running) {
      m.log(LogLevel::warning, "run " + std::to_string(r.id) + " was running when the service stopped: it runs again");
      r.state = run_state::queued;
      m.store->update_run(r);
      LogFile(m.log_path(r.id, -1)).append("[" + hms() + "] the service stopped during this run; it runs again\n");
    }
  }
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    for (const auto& r : left) m.queue.push_back(r.id);
    m.started = true;
    m.stopping = false;
  }
  if (!left.empty()) m.log(LogLevel::info, std::to_string(left.size()) + " unfinished run(s) queued again");
  // Runs wait for calls (the gate) far more than they compute: enough
  // workers that the limit on calls, not on runs, decides.
  std::size_t workers = std::max<std::size_t>(8, 4 * m.calls_limit);
  for (std::size_t i = 0; i < workers; ++i) m.workers.emplace_back([&m] { m.worker(); });
}

void Service::stop() {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<ActiveRun>> running;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    if (!m.started) return;
    m.stopping = true;
    for (auto& [id, run] : m.active) running.push_back(run);
  }
  m.queue_changed.notify_all();
  m.logs_changed.notify_all();
  for (auto& run : running) run->cancel.cancel();
  for (auto& t : m.workers) t.join();
  m.workers.clear();
  std::vector<std::thread> waiters;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    waiters.swap(m.waiters);
  }
  for (auto& t : waiters) t.join();
  std::lock_guard<std::mutex> lock(m.mutex);
  m.started = false;
}

const ServiceConf& Service::conf() const { return impl_->settings.conf; }
std::size_t Service::max_calls() const { return impl_->calls_limit; }
bool Service::has_tokens() const { return impl_->settings.tokens.has_value(); }

std::optional<std::string> Service::user_of_token(std::string_view token) const {
  if (!impl_->settings.tokens) return std::nullopt;
  return impl_->settings.tokens->user(token);
}

RunRecord Service::submit(const std::string& user, RunSpec spec) {
  Impl& m = *impl_;
  Invoker invoker = m.invoker_of(user);
  std::string upload_dir;
  bool has_uploads = std::any_of(spec.inputs.begin(), spec.inputs.end(), [](const InputSpec& i) { return i.uploaded(); });
  try {
    if (has_uploads) {
      char name[] = "XXXXXXXXXXXX";
      std::string tmpl = m.uploads_dir + "/" + name;
      std::vector<char> buffer(tmpl.begin(), tmpl.end());
      buffer.push_back('\0');
      if (!::mkdtemp(buffer.data())) throw std::runtime_error(std::string("cannot keep uploads: ") + std::strerror(errno));
      upload_dir = buffer.data();
      ::chmod(upload_dir.c_str(), 0711);
      for (std::size_t i = 0; i < spec.inputs.size(); ++i) {
        InputSpec& input = spec.inputs[i];
        if (!input.uploaded()) continue;
        input.path = m.save_upload(input, i, upload_dir, invoker);
        input.name.clear();
        input.content.clear();
      }
    }
    RunRecord r = m.record_for(user, spec, invoker, "");
    m.store->add_run(r);
    m.enqueue({r});
    return r;
  } catch (...) {
    if (!upload_dir.empty()) fs::remove_all(upload_dir);
    throw;
  }
}

std::vector<RunRecord> Service::notify_commit(const CommitHook& hook) {
  Impl& m = *impl_;
  const HookRepository* repo = nullptr;
  for (const auto& r : m.settings.conf.repositories)
    if (r.name == hook.repository || r.path == hook.repository) repo = &r;
  if (!repo)
    throw ApiError(404, "no repository '" + hook.repository + "' in " + m.settings.conf.origin +
                            "; a commit notification names a [[repository]] by its name or path");
  std::vector<RunRecord> runs;
  if (!repo->refs.empty() && std::find(repo->refs.begin(), repo->refs.end(), hook.ref) == repo->refs.end())
    return runs;  // a ref that triggers nothing
  Invoker invoker = m.invoker_of(repo->user);
  Object::Ptr origin = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  origin->set("repository", repo->name);
  origin->set("ref", hook.ref);
  origin->set("commit", hook.commit);
  std::ostringstream hook_text;
  origin->stringify(hook_text);
  for (const auto& target : repo->targets) {
    RunSpec spec;
    spec.repository = repo->path;
    spec.path = target.path;
    spec.commit = hook.commit;
    for (const auto& input : target.inputs) spec.inputs.push_back(InputSpec{input, "", ""});
    runs.push_back(m.record_for(repo->user, spec, invoker, hook_text.str()));
    runs.back().ref = hook.ref;
  }
  m.store->add_runs(runs);
  m.enqueue(runs);
  return runs;
}

std::optional<RunRecord> Service::run(std::int64_t id) { return impl_->store->run(id, true); }

std::vector<RunRecord> Service::runs(const RunFilter& filter) { return impl_->store->runs(filter); }

void Service::wait_finished(std::int64_t id, std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  // Unfinished: queued, waiting to come back (a lost engine) or running.
  auto unfinished = [&] {
    if (m.active.count(id) || std::find(m.queue.begin(), m.queue.end(), id) != m.queue.end()) return true;
    auto r = m.store->run(id, false);
    return r && !finished_state(r->state);
  };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(m.mutex);
  while (!m.stopping && unfinished())
    if (m.logs_changed.wait_until(lock, deadline) == std::cv_status::timeout) break;
}

RunRecord Service::cancel(const std::string& user, std::int64_t id, std::chrono::milliseconds wait) {
  Impl& m = *impl_;
  std::optional<RunRecord> r = m.store->run(id, false);
  if (!r) throw ApiError(404, "no run " + std::to_string(id));
  if (r->user != user) throw ApiError(403, "run " + std::to_string(id) + " is " + r->user + "'s; only they can cancel it");
  std::shared_ptr<ActiveRun> running;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    auto queued = std::find(m.queue.begin(), m.queue.end(), id);
    auto it = m.active.find(id);
    // Read again under the lock: a run that has left `active` has its
    // final state stored already.
    if (it == m.active.end()) r = m.store->run(id, false);
    if (it != m.active.end()) {
      running = it->second;
    } else if (queued != m.queue.end() || !finished_state(r->state)) {
      // Queued, or waiting for the engine to come back (then a worker
      // finds it ended and skips it).
      if (queued != m.queue.end()) m.queue.erase(queued);
      r->state = run_state::cancelled;
      r->exit_code = 130;
      r->ended = now_seconds();
      r->error = "cancelled by " + user + " before it started";
      m.store->update_run(*r);
    }
  }
  if (running) {
    running->cancelled_by_user = true;
    running->cancel.cancel();
    auto deadline = std::chrono::steady_clock::now() + wait;
    std::unique_lock<std::mutex> lock(m.mutex);
    m.logs_changed.wait_until(lock, deadline, [&] { return !m.active.count(id); });
  } else if (finished_state(r->state) && r->state != run_state::cancelled) {
    throw ApiError(409, "run " + std::to_string(id) + " has ended (" + r->state + "); there is nothing to cancel");
  }
  m.logs_changed.notify_all();
  return *m.store->run(id, true);
}

LogPiece Service::read_log(std::int64_t id, int call, std::uint64_t offset, std::size_t max_bytes) {
  Impl& m = *impl_;
  std::optional<RunRecord> r = m.store->run(id, call >= 0);
  if (!r) throw ApiError(404, "no run " + std::to_string(id));
  // A call the run has not reached yet has an empty log that will grow;
  // one an ended run never had, none.
  if (call >= 0 && finished_state(r->state) &&
      !std::any_of(r->calls.begin(), r->calls.end(), [&](const CallRecord& c) { return c.index == call; }))
    throw ApiError(404, "run " + std::to_string(id) + " has no call " + std::to_string(call) + " (it has " +
                            std::to_string(r->calls.size()) + ")");
  LogPiece piece;
  bool complete;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    auto it = m.active.find(id);
    complete = it == m.active.end() ? finished_state(r->state) : call >= 0 && it->second->ended_calls.count(call);
  }
  stages::Fd fd(::open(m.log_path(id, call).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  piece.next = offset;
  if (fd.get() >= 0) {
    piece.text.resize(max_bytes);
    ssize_t n = ::pread(fd.get(), piece.text.data(), max_bytes, static_cast<off_t>(offset));
    piece.text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    piece.next = offset + piece.text.size();
    struct stat st {};
    // Complete: the writer has stopped and everything up to the end is read.
    piece.complete = complete && ::fstat(fd.get(), &st) == 0 && piece.next >= static_cast<std::uint64_t>(st.st_size);
  } else {
    piece.complete = complete;
  }
  return piece;
}

void Service::wait_log(std::int64_t id, int call, std::uint64_t offset, std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  std::string path = m.log_path(id, call);
  auto grown = [&] {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) > offset) return true;
    auto it = m.active.find(id);
    if (it == m.active.end()) {
      // Not running: queued (it will grow) or ended (it will not).
      return std::find(m.queue.begin(), m.queue.end(), id) == m.queue.end();
    }
    return call >= 0 && it->second->ended_calls.count(call) > 0;
  };
  std::unique_lock<std::mutex> lock(m.mutex);
  m.logs_changed.wait_for(lock, timeout, [&] { return m.stopping || grown(); });
}

Poco::JSON::Object::Ptr Service::nodes() {
  Impl& m = *impl_;
  Object::Ptr out = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  std::vector<std::pair<std::int64_t, CallRecord>> running;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    for (const auto& [id, run] : m.active)
      for (const auto& [index, call] : run->running) running.emplace_back(id, call);
  }
  auto call_object = [](std::int64_t run, const CallRecord& c) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("run", run);
    o->set("call", c.index);
    o->set("node", c.node);
    o->set("computation", c.computation);
    o->set("seconds", std::round((now_seconds() - c.started) * 10) / 10);
    return o;
  };
  Array::Ptr nodes = new Array;
  docker::EngineInfo info = m.client.info();
  bool fleet = m.settings.conf.swarm && info.swarm.control_available;
  out->set("kind", fleet ? "swarm" : "engine");
  out->set("max_calls", fleet ? Poco::Dynamic::Var() : Poco::Dynamic::Var(m.calls_limit));
  if (!fleet) {
    Object::Ptr node = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    node->set("name", info.name);
    node->set("role", "engine");
    node->set("state", "ready");
    node->set("engine_version", info.server_version);
    node->set("os", info.os);
    node->set("cpus", info.cpus);
    node->set("memory_bytes", info.memory_bytes);
    node->set("containers_running", info.containers_running);
    Array::Ptr containers = new Array;
    for (const auto& c : m.client.list_containers(run_container_filter(), docker::Which::all)) {
      Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      o->set("id", c.id.substr(0, 12));
      o->set("name", c.names.empty() ? "" : c.names[0]);
      o->set("state", c.state);
      auto label = [&](const char* key) {
        auto it = c.labels.find(key);
        return it == c.labels.end() ? std::string() : it->second;
      };
      o->set("computation", label(label::computation));
      o->set("compdir", label(label::compdir));
      containers->add(o);
    }
    node->set("containers", containers);
    Array::Ptr calls = new Array;
    for (const auto& [id, c] : running) calls->add(call_object(id, c));
    node->set("calls", calls);
    nodes->add(node);
  } else {
    FleetStatus status = fleet_status(m.client);
    for (const auto& n : status.nodes) {
      Object::Ptr node = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      node->set("name", n.node.hostname);
      node->set("role", n.node.role);
      node->set("state", n.node.state);
      node->set("availability", n.node.availability);
      node->set("engine_version", n.node.engine_version);
      node->set("cpus", static_cast<double>(n.node.nano_cpus) / 1e9);
      node->set("memory_bytes", n.node.memory_bytes);
      Array::Ptr jobs = new Array;
      for (std::size_t j : n.jobs) {
        const FleetJob& job = status.jobs[j];
        Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
        o->set("service", job.service_id.substr(0, 12));
        o->set("call", job.call);
        o->set("computation", job.computation);
        o->set("state", job.state);
        o->set("attempt", job.attempt);
        jobs->add(o);
      }
      node->set("containers", jobs);
      nodes->add(node);
    }
    Array::Ptr calls = new Array;
    for (const auto& [id, c] : running) calls->add(call_object(id, c));
    out->set("calls", calls);
    out->set("pending_jobs", status.pending);
  }
  out->set("nodes", nodes);
  return out;
}

std::string Service::metrics() {
  Impl& m = *impl_;
  std::map<std::string, std::int64_t> by_state = m.store->count_by_state();
  ServiceCounters c;
  std::size_t queued = 0, active = 0;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    c = m.counters;
    queued = m.queue.size();
    active = m.active.size();
  }
  std::ostringstream out;
  out << "# HELP ce_run_runs Runs in the service's store, by state.\n# TYPE ce_run_runs gauge\n";
  for (const auto& [state, count] : by_state) out << "ce_run_runs{state=\"" << state << "\"} " << count << "\n";
  out << "# HELP ce_run_runs_active Runs being run now.\n# TYPE ce_run_runs_active gauge\nce_run_runs_active "
      << active << "\n";
  out << "# HELP ce_run_queue_length Runs waiting for their turn.\n# TYPE ce_run_queue_length gauge\n"
      << "ce_run_queue_length " << queued << "\n";
  out << "# HELP ce_run_calls_waiting Calls waiting for a place among the calls that compute.\n"
      << "# TYPE ce_run_calls_waiting gauge\nce_run_calls_waiting " << m.slots->waiting() << "\n";
  out << "# HELP ce_run_calls_computing Calls computing now on the local engine.\n"
      << "# TYPE ce_run_calls_computing gauge\nce_run_calls_computing " << m.slots->in_use() << "\n";
  out << "# HELP ce_run_calls_limit The most calls that compute at once on the local engine.\n"
      << "# TYPE ce_run_calls_limit gauge\nce_run_calls_limit " << m.calls_limit << "\n";
  out << "# HELP ce_run_calls_total Calls ended since the service started, by result.\n"
      << "# TYPE ce_run_calls_total counter\n"
      << "ce_run_calls_total{result=\"computed\"} " << c.calls_computed << "\n"
      << "ce_run_calls_total{result=\"reused\"} " << c.calls_reused << "\n"
      << "ce_run_calls_total{result=\"failed\"} " << c.calls_failed << "\n";
  out << "# HELP ce_run_runs_submitted_total Runs accepted since the service started.\n"
      << "# TYPE ce_run_runs_submitted_total counter\nce_run_runs_submitted_total " << c.runs_submitted << "\n";
  out << "# HELP ce_run_call_duration_seconds How long computed calls took.\n"
      << "# TYPE ce_run_call_duration_seconds histogram\n";
  std::int64_t cumulative = 0;
  for (std::size_t i = 0; i < std::size(duration_buckets); ++i) {
    cumulative += c.durations[i];
    out << "ce_run_call_duration_seconds_bucket{le=\"" << duration_buckets[i] << "\"} " << cumulative << "\n";
  }
  cumulative += c.durations[std::size(duration_buckets)];
  out << "ce_run_call_duration_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
      << "ce_run_call_duration_seconds_sum " << c.duration_sum << "\n"
      << "ce_run_call_duration_seconds_count " << c.duration_count << "\n";
  return out.str();
}

}  // namespace ce::runner::service
