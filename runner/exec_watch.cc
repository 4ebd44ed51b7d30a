#include "runner/exec_watch.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

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

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

std::string exec_note(const std::string& container, const std::string& exec_id) {
  return "exec " + host_name() + " " + container + " " + exec_id + "\n";
}

bool await_leftover_exec(docker::Client& client, const std::string& note, const std::string& container,
                         std::chrono::milliseconds wait) {
  std::istringstream in(note);
  std::string word, host, noted_container, exec_id;
  if (!(in >> word >> host >> noted_container >> exec_id) || word != "exec" || host != host_name() ||
      noted_container != container)
    return false;
  auto running = [&] {
    try {
      auto state = client.exec_state(exec_id);
      // The engine's word binds the exec to our container, whatever the note says.
      return state.running && state.container_id == container;
    } catch (const docker::EngineError& e) {
      // Gone with its container, or the engine was restarted since.
      if (e.kind() == docker::ErrorKind::no_such_exec || e.kind() == docker::ErrorKind::not_found ||
          e.kind() == docker::ErrorKind::no_such_container)
        return false;
      throw;
    }
  };
  if (!running()) return false;
  for (auto deadline = std::chrono::steady_clock::now() + wait; std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!running()) break;
  }
  return true;
}

ExecWatch::ExecWatch(long timeout_seconds) : timeout_seconds_(timeout_seconds) {
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
  wake(0);
  thread_.join();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  signal_pipe = -1;
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

void ExecWatch::wake(char c) { (void)!::write(pipe_[1], &c, 1); }

void ExecWatch::arm_timeout() {
  started_ms_ = now_ms();
  armed_ = timeout_seconds_ > 0;
  wake(0);
}

void ExecWatch::output_closed() {
  if (output_lost_.exchange(true)) return;
  cancel_.cancel();
}

void ExecWatch::run() {
  while (!finished_) {
    int wait_ms = -1;
    if (armed_) {
      long long left = started_ms_ + timeout_seconds_ * 1000 - now_ms();
      wait_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60000)));
    }
    pollfd p{pipe_[0], POLLIN, 0};
    if (::poll(&p, 1, wait_ms) > 0) {
      char c;
      if (::read(pipe_[0], &c, 1) == 1 && c != 0 && signal_ == 0) signal_ = c;
    }
    if (finished_) break;
    if (armed_ && now_ms() >= started_ms_ + timeout_seconds_ * 1000 && armed_.exchange(false)) timed_out_ = true;
    if (signal_ != 0 || timed_out_) cancel_.cancel();
  }
}

}  // namespace ce::runner
