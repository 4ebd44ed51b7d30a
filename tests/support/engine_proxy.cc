#include "support/engine_proxy.h"

#include "support/fake_engine.h"

#include <cstring>
#include <poll.h>
#include <regex>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ce::test {

EngineProxy::EngineProxy(long reported_pid, std::string engine_socket)
    : pid_(reported_pid), socket_(std::move(engine_socket)) {
  listen_fd_ = listen_on_loopback(uri_);
  thread_ = std::thread([this] { serve(); });
}

EngineProxy::~EngineProxy() {
  stop_ = true;
  thread_.join();
  for (auto& r : relays_) r.join();
  ::close(listen_fd_);
}

void EngineProxy::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client >= 0) relays_.emplace_back([this, client] { relay(client); });
  }
}

void EngineProxy::relay(int client) {
  int engine = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_.c_str(), sizeof address.sun_path - 1);
  if (::connect(engine, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(engine);
    ::close(client);
    return;
  }
  static const std::regex pid("\"Pid\":([0-9]+)");
  std::string reported = std::to_string(pid_);
  char buffer[65536];
  bool client_open = true, engine_open = true;
  while (!stop_ && (client_open || engine_open)) {
    pollfd p[2] = {{client, static_cast<short>(client_open ? POLLIN : 0), 0},
                   {engine, static_cast<short>(engine_open ? POLLIN : 0), 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    if (client_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) {
        client_open = false;
        ::shutdown(engine, SHUT_WR);  // a half-close travels on
      } else {
        (void)!::send(engine, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL);
      }
    }
    if (engine_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::recv(engine, buffer, sizeof buffer, 0);
      if (n <= 0) {
        engine_open = false;
        ::shutdown(client, SHUT_WR);
      } else {
        std::string bytes(buffer, static_cast<std::size_t>(n));
        std::smatch m;
        std::string out;
        auto from = bytes.cbegin();
        while (std::regex_search(from, bytes.cend(), m, pid)) {
          out.append(from, m[1].first);
          std::string digits = m[1].str();
          if (digits != "0" && reported.size() <= digits.size()) {
            out += std::string(digits.size() - reported.size(), ' ') + reported;
            ++rewrites_;
          } else {
            out += digits;
          }
          from = m[1].second;
        }
        out.append(from, bytes.cend());
        (void)!::send(client, out.data(), out.size(), MSG_NOSIGNAL);
      }
    }
  }
  ::close(engine);
  ::close(client);
}

}  // namespace ce::test
