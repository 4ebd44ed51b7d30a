// Where the Docker engine listens: DOCKER_HOST, as the docker CLI reads it.
//   unix:///path/to/docker.sock   (default unix:///var/run/docker.sock)
//   tcp://host:port               (plain HTTP; no TLS)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ce::docker {

struct EngineAddress {
  enum class Kind { unix_socket, tcp };

  Kind kind = Kind::unix_socket;
  std::string path = "/var/run/docker.sock";  // Kind::unix_socket
  std::string host;                           // Kind::tcp
  std::uint16_t port = 0;                     // Kind::tcp

  // The address as a DOCKER_HOST value, for messages.
  std::string uri() const;

  // Parses a DOCKER_HOST value; throws EngineError(ErrorKind::other) naming
  // the value and the accepted forms.
  static EngineAddress parse(std::string_view docker_host);
  // DOCKER_HOST if set and not empty, else the default socket.
  static EngineAddress from_environment();
};

}  // namespace ce::docker
