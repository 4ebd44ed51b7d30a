// Turns what should stop a run into one cancellation token: SIGINT and
// SIGTERM (the handlers are installed while an ExecWatch lives), the
// command's wall-clock timeout, and a standard output whose reader went
// away. Whatever runs or waits on the token gives up: a supervised exec is
// stopped through its lifeline (docker::Client::run_supervised_exec), a
// lock wait ends (stages::FileLock). No process is signalled from here.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "docker/cancellation.h"
#include "docker/client.h"

namespace ce::runner {

class ExecWatch {
 public:
  // timeout_seconds 0: no timeout (docker.conf bounds it to a year).
  explicit ExecWatch(long timeout_seconds);
  ~ExecWatch();
  ExecWatch(const ExecWatch&) = delete;
  ExecWatch& operator=(const ExecWatch&) = delete;

  docker::Cancellation& cancellation() { return cancel_; }
  // The timeout counts from now.
  void arm_timeout();
  // The command has ended: no timeout from now on (one that came first
  // stands).
  void disarm_timeout() { armed_ = false; }
  // Standard output can no longer be written (EPIPE): stop.
  void output_closed();

  int signal() const { return signal_; }  // 0, SIGINT or SIGTERM
  bool timed_out() const { return timed_out_; }
  bool output_lost() const { return output_lost_; }

 private:
  void run();
  void wake(char c);

  docker::Cancellation cancel_;
  long timeout_seconds_;
  std::atomic<bool> finished_{false};
  std::atomic<int> signal_{0};
  std::atomic<bool> timed_out_{false};
  std::atomic<bool> output_lost_{false};
  std::atomic<long long> started_ms_{0};
  std::atomic<bool> armed_{false};
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

// A lock holder's note naming the exec it runs, bound to the container it
// runs in ("exec HOST CONTAINER EXEC-ID"), for stages::FileLock::set_note.
std::string exec_note(const std::string& container, const std::string& exec_id);

// Waits for the exec that a previous lock holder noted to end, when it is
// this host's and runs in `container` (the caller's own: a note naming any
// other container, forged or stale, is ignored). Its holder was killed, so
// its supervisor is stopping it; `wait` bounds the wait. Returns whether
// such an exec was running.
bool await_leftover_exec(docker::Client& client, const std::string& note, const std::string& container,
                         std::chrono::milliseconds wait = std::chrono::seconds(15));

}  // namespace ce::runner
