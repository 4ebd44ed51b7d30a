// A cancellation token: the caller holds it and cancels from any thread (a
// signal watcher, a timeout, a sink whose reader went away); whatever waits
// or runs on its behalf gives up promptly. Cancelling is sticky: work that
// starts after it stops at once.
//
// Waits that cannot block on the token itself (a lock) poll it through
// wait_for(); running work registers what stops it (an exec's lifeline is
// closed) and is stopped at once if the token is already cancelled.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <stdexcept>

namespace ce::docker {

class Cancellation {
 public:
  class Registration;

  // Thread-safe; runs the registered stops on the calling thread (not from a
  // signal handler).
  void cancel();
  bool cancelled() const;
  // Sleeps up to `time`; true as soon as the token is cancelled.
  bool wait_for(std::chrono::milliseconds time) const;
  // `stop` runs once: now if already cancelled, else on cancel(), unless
  // the Registration is destroyed first (then it never runs afterwards).
  [[nodiscard]] Registration on_cancel(std::function<void()> stop);

 private:
  using Stops = std::list<std::function<void()>>;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool cancelled_ = false;
  Stops stops_;
};

class Cancellation::Registration {
 public:
  Registration() = default;
  Registration(Registration&& other) noexcept;
  Registration& operator=(Registration&&) = delete;
  ~Registration();

 private:
  friend class Cancellation;
  Registration(Cancellation* token, Stops::iterator it) : token_(token), it_(it) {}
  Cancellation* token_ = nullptr;
  Stops::iterator it_;
};

// Thrown by a wait that the token ended.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

}  // namespace ce::docker
