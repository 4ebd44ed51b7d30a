// A remote-looking engine for tests: a TCP listener on 127.0.0.1 that relays
// every connection to the local engine's socket, and rewrites each "Pid" the
// engine reports (GET /exec/{id}/json) to a pid of the test's choosing, as a
// remote engine's host pids mean nothing here. Same-length rewriting (the
// number padded with spaces, still JSON), so no header changes.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace ce::test {

class EngineProxy {
 public:
  explicit EngineProxy(long reported_pid, std::string engine_socket = "/var/run/docker.sock");
  ~EngineProxy();
  std::string uri() const { return uri_; }  // tcp://127.0.0.1:PORT
  int rewrites() const { return rewrites_; }

 private:
  void serve();
  void relay(int client);

  long pid_;
  std::string socket_, uri_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> rewrites_{0};
  std::thread thread_;
  std::vector<std::thread> relays_;
};

}  // namespace ce::test
