#include "docker/attach.h"

#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "docker/errors.h"
#include "docker/json_mapping.h"

namespace ce::docker {

struct AttachedExec::Impl {
  Poco::Net::StreamSocket socket;
  std::string pending;
};

AttachedExec::AttachedExec(const EngineAddress& address, const std::string& exec_id, bool tty)
    : impl_(std::make_unique<Impl>()) {
  std::string endpoint = "POST /v1.41/exec/" + exec_id + "/start";
  try {
    if (address.kind == EngineAddress::Kind::unix_socket)
      impl_->socket.connect(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, address.path));
    else
      impl_->socket.connect(Poco::Net::SocketAddress(address.host, address.port));
  } catch (const Poco::Exception& e) {
    throw EngineError(ErrorKind::unreachable, "cannot reach the Docker engine at " + address.uri() + " (" +
                                                  e.displayText() + "); start it with scripts/start-docker",
                      0, endpoint);
  }
  std::string body = std::string(R"({"Detach":false,"Tty":)") + (tty ? "true" : "false") + "}";
  std::string request = "POST /v1.41/exec/" + exec_id +
                        "/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                        "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!write(request.data(), request.size()))
    throw EngineError(ErrorKind::unreachable, "lost the connection to the Docker engine during " + endpoint, 0,
                      endpoint);
  // The response head, then the raw stream.
  std::string head;
  char buffer[4096];
  std::size_t end;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd(), buffer, sizeof buffer, 0);
    if (n <= 0)
      throw EngineError(ErrorKind::unreachable, "lost the connection to the Docker engine during " + endpoint, 0,
                        endpoint);
    head.append(buffer, static_cast<std::size_t>(n));
  }
  impl_->pending = head.substr(end + 4);
  int status = 0;
  std::sscanf(head.c_str(), "HTTP/1.%*d %d", &status);
  if (status != 101 && status != 200) {
    // An error: its body is JSON after the head (it may need more reads).
    std::string text = impl_->pending;
    ssize_t n;
    while ((n = ::recv(fd(), buffer, sizeof buffer, 0)) > 0) text.append(buffer, static_cast<std::size_t>(n));
    throw error_from_response(status, endpoint, json::parse_error_message(text));
  }
}

AttachedExec::~AttachedExec() = default;

int AttachedExec::fd() const { return impl_->socket.impl()->sockfd(); }

long AttachedExec::read(char* buffer, std::size_t size) {
  if (!impl_->pending.empty()) {
    std::size_t n = std::min(size, impl_->pending.size());
    std::memcpy(buffer, impl_->pending.data(), n);
    impl_->pending.erase(0, n);
    return static_cast<long>(n);
  }
  for (;;) {
    ssize_t n = ::recv(fd(), buffer, size, 0);
    if (n < 0 && errno == EINTR) continue;
    return n < 0 ? 0 : static_cast<long>(n);
  }
}

bool AttachedExec::write(const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd(), data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void AttachedExec::close_input() { ::shutdown(fd(), SHUT_WR); }

}  // namespace ce::docker
