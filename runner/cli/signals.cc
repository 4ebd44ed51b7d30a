#include "runner/cli/signals.h"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
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

}  // namespace

StopWatch::StopWatch(docker::Cancellation& cancel) : cancel_(cancel) {
  if (::pipe2(pipe_, O_CLOEXEC) != 0) throw std::runtime_error("cannot create a pipe for signals");
  signal_pipe = pipe_[1];
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  thread_ = std::thread([this] { run(); });
}

StopWatch::~StopWatch() {
  char end = 0;
  (void)!::write(pipe_[1], &end, 1);
  thread_.join();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  signal_pipe = -1;
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

void StopWatch::output_closed() {
  if (output_lost_.exchange(true)) return;
  cancel_.cancel();
}

void StopWatch::run() {
  for (;;) {
    char c = 0;
    ssize_t n = ::read(pipe_[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1 || c == 0) return;
    int none = 0;
    signal_.compare_exchange_strong(none, c);
    cancel_.cancel();
  }
}

}  // namespace ce::runner
