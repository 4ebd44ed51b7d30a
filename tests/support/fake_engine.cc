#include "support/fake_engine.h"

#include <cstring>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ce::test {

int listen_on_loopback(std::string& uri) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;  // any free port
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  uri = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  return fd;
}

FakeEngine::FakeEngine(std::vector<Reply> replies, Listen listen) : replies_(std::move(replies)) {
  if (listen == Listen::tcp_loopback) {
    listen_fd_ = listen_on_loopback(uri_);
    thread_ = std::thread([this] { serve(); });
    return;
  }
  char tmpl[] = "/tmp/ce-fake-engine-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  path_ = dir_ + "/docker.sock";
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 8) != 0)
    throw std::runtime_error("cannot listen on " + path_);
  uri_ = "unix://" + path_;
  thread_ = std::thread([this] { serve(); });
}

FakeEngine::~FakeEngine() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
}

std::vector<std::string> FakeEngine::request_lines() const { return request_lines_; }

std::string FakeEngine::ok(const std::string& body, const std::string& type) {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

void FakeEngine::serve() {
  std::size_t next = 0;
  int fd = -1;
  std::string buffer;
  while (!stop_ && next < replies_.size()) {
    if (fd < 0) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      fd = ::accept(listen_fd_, nullptr, nullptr);
      ++connections_;
      buffer.clear();
    }
    // Read one request: headers, then Content-Length bytes of body.
    std::size_t header_end;
    while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (stop_) break;
      if (::poll(&p, 1, 50) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    if (header_end == std::string::npos) {
      ::close(fd);
      fd = -1;
      continue;
    }
    std::size_t length = 0;
    auto at = buffer.find("Content-Length: ");
    if (at != std::string::npos && at < header_end) length = std::stoul(buffer.substr(at + 16));
    while (buffer.size() < header_end + 4 + length) {
      char chunk[4096];
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    request_lines_.push_back(buffer.substr(0, buffer.find("\r\n")));
    buffer.erase(0, std::min(buffer.size(), header_end + 4 + length));
    const Reply& reply = replies_[next++];
    (void)!::write(fd, reply.raw.data(), reply.raw.size());
    if (reply.close_after) {
      ::close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) ::close(fd);
}

}  // namespace ce::test
