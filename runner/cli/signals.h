// SIGINT and SIGTERM, and a standard output whose reader went away, turned
// into the cancellation of the token a call runs with. The handlers are
// installed while a StopWatch lives (the command line's alone: the library
// installs none). No process is signalled from here: what runs on the token
// stops itself.
#pragma once

#include <atomic>
#include <thread>

#include "docker/cancellation.h"

namespace ce::runner {

class StopWatch {
 public:
  explicit StopWatch(docker::Cancellation& cancel);
  ~StopWatch();
  StopWatch(const StopWatch&) = delete;
  StopWatch& operator=(const StopWatch&) = delete;

  // Standard output can no longer be written (EPIPE): stop.
  void output_closed();
  int signal() const { return signal_; }  // 0, SIGINT or SIGTERM
  bool output_lost() const { return output_lost_; }

 private:
  void run();
  docker::Cancellation& cancel_;
  std::atomic<int> signal_{0};
  std::atomic<bool> output_lost_{false};
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace ce::runner
