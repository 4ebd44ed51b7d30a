#include "docker/cancellation.h"

namespace ce::docker {

void Cancellation::cancel() {
  std::unique_lock lock(mutex_);
  if (cancelled_) return;
  cancelled_ = true;
  changed_.notify_all();
  // A stop may take a moment (a socket call): run them under the lock, so a
  // Registration destroyed meanwhile waits for its stop to finish.
  for (auto& stop : stops_)
    if (stop) stop();
}

bool Cancellation::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

bool Cancellation::wait_for(std::chrono::milliseconds time) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, time, [this] { return cancelled_; });
}

Cancellation::Registration Cancellation::on_cancel(std::function<void()> stop) {
  std::unique_lock lock(mutex_);
  if (cancelled_) {
    stop();
    return {};
  }
  stops_.push_back(std::move(stop));
  return Registration(this, std::prev(stops_.end()));
}

Cancellation::Registration::Registration(Registration&& other) noexcept : token_(other.token_), it_(other.it_) {
  other.token_ = nullptr;
}

Cancellation::Registration::~Registration() {
  if (!token_) return;
  std::lock_guard lock(token_->mutex_);
  token_->stops_.erase(it_);
}

}  // namespace ce::docker
