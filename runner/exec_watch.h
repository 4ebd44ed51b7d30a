// Stops what ce-run runs in a container when the user interrupts ce-run
// (SIGINT, SIGTERM) or the computation's wall-clock timeout passes: the
// engine has no call to stop an exec, so the exec's process (its host pid,
// from the engine) and all its descendants are signalled, SIGTERM then
// SIGKILL after a grace period. Nothing is left running in the container.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "docker/client.h"

namespace ce::runner {

class ExecWatch {
 public:
  // timeout_seconds 0: no timeout. Installs the signal handlers until
  // destroyed.
  ExecWatch(const docker::EngineAddress& engine, long timeout_seconds);
  ~ExecWatch();
  ExecWatch(const ExecWatch&) = delete;
  ExecWatch& operator=(const ExecWatch&) = delete;

  // The exec to stop if it comes to that.
  void watch(const std::string& exec_id);
  // The timeout counts from now.
  void arm_timeout();
  // The exec has ended: nothing to stop.
  void done();

  int signal() const { return signal_; }  // 0, SIGINT or SIGTERM
  bool timed_out() const { return timed_out_; }

 private:
  void run();
  void stop_exec();

  docker::Client client_;
  long timeout_seconds_;
  std::mutex mutex_;
  std::string exec_id_;
  std::atomic<bool> finished_{false};
  std::atomic<int> signal_{0};
  std::atomic<bool> timed_out_{false};
  std::atomic<long long> started_ms_{0};
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

// Signals a host process and all its descendants (found through /proc).
void kill_process_tree(long pid, int sig);

// A lock holder's note naming the exec it runs ("exec HOST EXEC-ID"), for
// stages::FileLock::set_note.
std::string exec_note(const std::string& exec_id);

// Stops the exec a previous lock holder noted, if it still runs: its holder
// was killed (kill -9) and left it running. Only execs of this host's
// engine are touched. Returns whether one was stopped.
bool stop_leftover_exec(docker::Client& client, const std::string& note);

}  // namespace ce::runner
