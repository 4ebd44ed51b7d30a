#include "runner/exec_watch.h"

#include <chrono>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <map>
#include <poll.h>
#include <sstream>
#include <unistd.h>
#include <vector>

namespace ce::runner {

namespace {

int signal_pipe = -1;
struct sigaction old_int, old_term;

void on_signal(int sig) {
  if (signal_pipe >= 0) {
    char c = static_cast<char>(sig);
    (void)!::write(signal_pipe, &c, 1);
  }
}

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<long> descendants(long root) {
  std::multimap<long, long> children;  // ppid -> pid
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* entry = ::readdir(proc)) {
      char* end = nullptr;
      long pid = std::strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      std::ifstream in(std::string("/proc/") + entry->d_name + "/stat");
      std::string stat;
      std::getline(in, stat);
      auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(stat.substr(close + 2));
      std::string state;
      long ppid = 0;
      fields >> state >> ppid;
      children.emplace(ppid, pid);
    }
    ::closedir(proc);
  }
  std::vector<long> out{root};
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto [begin, end] = children.equal_range(out[i]);
    for (auto it = begin; it != end; ++it) out.push_back(it->second);
  }
  return out;
}

}  // namespace

void kill_process_tree(long pid, int sig) {
  if (pid <= 1) return;
  for (long p : descendants(pid)) ::kill(static_cast<pid_t>(p), sig);
}

namespace {
std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}
}  // namespace

std::string exec_note(const std::string& exec_id) { return "exec " + host_name() + " " + exec_id + "\n"; }

bool stop_leftover_exec(docker::Client& client, const std::string& note) {
  std::istringstream in(note);
  std::string word, host, exec_id;
  if (!(in >> word >> host >> exec_id) || word != "exec" || host != host_name()) return false;
  docker::ExecState state;
  try {
    state = client.exec_state(exec_id);
  } catch (const docker::EngineError& e) {
    // Gone with its container, or the engine was restarted since.
    if (e.kind() == docker::ErrorKind::no_such_exec || e.kind() == docker::ErrorKind::not_found ||
        e.kind() == docker::ErrorKind::no_such_container)
      return false;
    throw;
  }
  if (!state.running) return false;
  // The engine's pid is a pid of its host: ours only when the engine is
  // local, and the process must still be in the exec's container (pids are
  // reused). Otherwise it is left alone.
  if (client.address().kind != docker::EngineAddress::Kind::unix_socket || state.container_id.empty()) return false;
  std::ifstream cgroup("/proc/" + std::to_string(state.pid) + "/cgroup");
  std::string groups((std::istreambuf_iterator<char>(cgroup)), std::istreambuf_iterator<char>());
  if (groups.find(state.container_id) == std::string::npos) return false;
  kill_process_tree(static_cast<long>(state.pid), SIGKILL);
  for (int i = 0; i < 100 && client.exec_state(exec_id).running; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return true;
}

ExecWatch::ExecWatch(const docker::EngineAddress& engine, long timeout_seconds)
    : client_(engine), timeout_seconds_(timeout_seconds) {
  if (::pipe2(pipe_, O_CLOEXEC) != 0) throw std::runtime_error("cannot create a pipe for signals");
  signal_pipe = pipe_[1];
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  thread_ = std::thread([this] { run(); });
}

ExecWatch::~ExecWatch() {
  finished_ = true;
  char c = 0;
  (void)!::write(pipe_[1], &c, 1);
  thread_.join();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  signal_pipe = -1;
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

void ExecWatch::watch(const std::string& exec_id) {
  {
    std::lock_guard lock(mutex_);
    exec_id_ = exec_id;
  }
  char c = 0;
  (void)!::write(pipe_[1], &c, 1);  // wake the watcher: a signal may be pending
}

void ExecWatch::arm_timeout() {
  started_ms_ = now_ms();
  char c = 0;
  (void)!::write(pipe_[1], &c, 1);
}

void ExecWatch::done() {
  std::lock_guard lock(mutex_);
  exec_id_.clear();
}

void ExecWatch::stop_exec() {
  std::string id;
  {
    std::lock_guard lock(mutex_);
    id = exec_id_;
  }
  if (id.empty()) return;
  long pid = 0;
  try {
    pid = client_.exec_state(id).pid;
  } catch (const std::exception&) {
    return;
  }
  if (pid <= 0) return;
  kill_process_tree(pid, SIGTERM);
  for (int i = 0; i < 50; ++i) {  // 5 s of grace
    if (::kill(static_cast<pid_t>(pid), 0) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill_process_tree(pid, SIGKILL);
}

void ExecWatch::run() {
  std::string stopped;  // the exec last stopped: each is stopped once
  while (!finished_) {
    int wait_ms = -1;
    bool triggered = signal_ != 0 || timed_out_;
    if (!triggered && timeout_seconds_ > 0 && started_ms_ > 0) {
      long long left = started_ms_ + timeout_seconds_ * 1000 - now_ms();
      wait_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60000)));
    }
    pollfd p{pipe_[0], POLLIN, 0};
    if (::poll(&p, 1, wait_ms) > 0) {
      char c;
      if (::read(pipe_[0], &c, 1) == 1 && c != 0 && signal_ == 0) signal_ = c;
    }
    if (finished_) break;
    if (timeout_seconds_ > 0 && started_ms_ > 0 && now_ms() >= started_ms_ + timeout_seconds_ * 1000)
      timed_out_ = true;
    if (signal_ == 0 && !timed_out_) continue;
    std::string id;
    {
      std::lock_guard lock(mutex_);
      id = exec_id_;
    }
    if (!id.empty() && id != stopped) {
      stopped = id;
      stop_exec();
    }
  }
}

}  // namespace ce::runner
