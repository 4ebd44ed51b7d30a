#include <catch2/catch.hpp>

#include "docker/engine_address.h"
#include "docker/errors.h"

using ce::docker::EngineAddress;

TEST_CASE("DOCKER_HOST unix addresses name the socket path", "[address]") {
  auto a = EngineAddress::parse("unix:///run/user/1000/docker.sock");
  CHECK(a.kind == EngineAddress::Kind::unix_socket);
  CHECK(a.path == "/run/user/1000/docker.sock");
  CHECK(a.uri() == "unix:///run/user/1000/docker.sock");
}

TEST_CASE("DOCKER_HOST tcp addresses give host and port", "[address]") {
  auto a = EngineAddress::parse("tcp://127.0.0.1:2375");
  CHECK(a.kind == EngineAddress::Kind::tcp);
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 2375);
  auto v6 = EngineAddress::parse("tcp://[::1]:2376/");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 2376);
}

TEST_CASE("the default address is the system socket", "[address]") {
  EngineAddress a;
  CHECK(a.uri() == "unix:///var/run/docker.sock");
}

TEST_CASE("bad DOCKER_HOST values are refused with the accepted forms", "[address]") {
  REQUIRE_THROWS_WITH(EngineAddress::parse("ssh://me@host"),
                      "DOCKER_HOST=ssh://me@host: unsupported scheme; use "
                      "unix:///path/to/docker.sock or tcp://host:port");
  REQUIRE_THROWS_WITH(EngineAddress::parse("tcp://host:http"),
                      "DOCKER_HOST=tcp://host:http: 'http' is not a port number; use "
                      "unix:///path/to/docker.sock or tcp://host:port");
  REQUIRE_THROWS_WITH(EngineAddress::parse("unix://relative.sock"),
                      "DOCKER_HOST=unix://relative.sock: the socket path must be absolute; use "
                      "unix:///path/to/docker.sock or tcp://host:port");
}
