// A scripted stand-in for the Docker engine on a Unix socket, for unit tests
// of the client's transport: it answers each request with the next canned
// response and can close a connection after answering, as an engine that
// drops idle keep-alive connections does.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace ce::test {

// A listening TCP socket on 127.0.0.1 at a free port; `uri` gets
// "tcp://127.0.0.1:PORT". Throws if it cannot listen.
int listen_on_loopback(std::string& uri);

class FakeEngine {
 public:
  struct Reply {
    std::string raw;          // the whole HTTP response
    bool close_after = false;  // close the connection after sending it
  };

  enum class Listen { unix_socket, tcp_loopback };
  explicit FakeEngine(std::vector<Reply> replies, Listen listen = Listen::unix_socket);
  ~FakeEngine();

  std::string uri() const { return uri_; }
  int connections() const { return connections_; }
  std::vector<std::string> request_lines() const;

  // A 200 response with a JSON or text body, keep-alive.
  static std::string ok(const std::string& body, const std::string& type = "application/json");

 private:
  void serve();

  std::string dir_, path_, uri_;
  int listen_fd_ = -1;
  std::vector<Reply> replies_;
  std::vector<std::string> request_lines_;
  std::atomic<int> connections_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ce::test
