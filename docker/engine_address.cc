#include "docker/engine_address.h"

#include <charconv>
#include <cstdlib>

#include "docker/errors.h"

namespace ce::docker {

std::string EngineAddress::uri() const {
  if (kind == Kind::unix_socket) return "unix://" + path;
  return "tcp://" + host + ":" + std::to_string(port);
}

EngineAddress EngineAddress::parse(std::string_view value) {
  auto fail = [&](const std::string& why) -> EngineError {
    return EngineError(ErrorKind::other,
                       "DOCKER_HOST=" + std::string(value) + ": " + why +
                           "; use unix:///path/to/docker.sock or tcp://host:port");
  };
  EngineAddress address;
  if (value.rfind("unix://", 0) == 0) {
    address.kind = Kind::unix_socket;
    address.path = std::string(value.substr(7));
    if (address.path.empty() || address.path[0] != '/')
      throw fail("the socket path must be absolute");
    return address;
  }
  if (value.rfind("tcp://", 0) == 0) {
    std::string_view rest = value.substr(6);
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      throw fail("a tcp address needs a host and a port");
    address.kind = Kind::tcp;
    address.host = std::string(rest.substr(0, colon));
    if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']')
      address.host = address.host.substr(1, address.host.size() - 2);
    auto port_text = rest.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
      throw fail("'" + std::string(port_text) + "' is not a port number");
    address.port = static_cast<std::uint16_t>(port);
    return address;
  }
  throw fail("unsupported scheme");
}

EngineAddress EngineAddress::from_environment() {
  const char* value = std::getenv("DOCKER_HOST");
  if (value == nullptr || *value == '\0') return EngineAddress{};
  return parse(value);
}

}  // namespace ce::docker
