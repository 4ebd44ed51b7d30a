// The client's transport against a scripted fake engine: keep-alive reuse,
// recovery from a connection the engine closed, and refusal of old engines.
#include <catch2/catch.hpp>

#include "docker/client.h"
#include "support/fake_engine.h"

using namespace ce::docker;
using ce::test::FakeEngine;

TEST_CASE("requests reuse one keep-alive connection", "[transport]") {
  FakeEngine engine({{FakeEngine::ok("OK", "text/plain")},
                     {FakeEngine::ok("OK", "text/plain")},
                     {FakeEngine::ok("OK", "text/plain")}});
  Client client(EngineAddress::parse(engine.uri()));
  client.ping();
  client.ping();
  client.ping();
  CHECK(engine.connections() == 1);
  CHECK(engine.request_lines() == std::vector<std::string>(3, "GET /_ping HTTP/1.1"));
}

TEST_CASE("a keep-alive connection the engine closed is replaced and the request retried", "[transport]") {
  FakeEngine engine({{FakeEngine::ok("OK", "text/plain"), /*close_after=*/true},
                     {FakeEngine::ok(R"({"Id":"sha256:abc","RepoTags":["x:1"]})")}});
  Client client(EngineAddress::parse(engine.uri()));
  client.ping();
  auto image = client.inspect_image("x:1");
  CHECK(image.id == "sha256:abc");
  CHECK(engine.connections() == 2);
  CHECK(engine.request_lines().back() == "GET /v1.41/images/x:1/json HTTP/1.1");
}

TEST_CASE("an engine older than API 1.41 is refused with a clear message", "[transport]") {
  FakeEngine engine({{FakeEngine::ok("OK", "text/plain")},
                     {FakeEngine::ok(R"({"Version":"19.03.1","ApiVersion":"1.40","MinAPIVersion":"1.12"})")}});
  Client client(EngineAddress::parse(engine.uri()));
  try {
    client.check_engine();
    FAIL("an old engine was accepted");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::too_old);
    CHECK(std::string(e.what()) == "the Docker engine at " + engine.uri() +
                                       " (version 19.03.1) speaks API 1.40, but ce-run needs API 1.41 or "
                                       "newer (Docker 20.10+); upgrade the engine");
  }
}

TEST_CASE("an engine that dies mid-frame is an error, not a short output", "[transport]") {
  using namespace std::string_literals;
  // A raw stream (no length, read to the end) cut off inside a frame.
  FakeEngine engine({{"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"s +
                          "\x01\0\0\0\0\0\0\x05hel"s,
                      true}});
  Client client(EngineAddress::parse(engine.uri()));
  std::string got;
  try {
    client.start_exec("e1", [&](StreamKind, std::string_view b) { got.append(b); });
    FAIL("no error");
  } catch (const EngineError& e) {
    CHECK(got == "hel");
    CHECK(e.kind() == ErrorKind::protocol);
    CHECK(std::string(e.what()) == "the engine's output stream ended inside a frame (2 of 5 payload bytes missing)");
  }
}

TEST_CASE("an engine that is gone when the next request comes is reported as unreachable", "[transport]") {
  std::string uri;
  {
    FakeEngine engine({{FakeEngine::ok("OK", "text/plain"), true}});
    uri = engine.uri();
    Client client(EngineAddress::parse(uri));
    client.ping();
  }
  Client client(EngineAddress::parse(uri));
  try {
    client.ping();
    FAIL("no error");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::unreachable);
    CHECK_THAT(e.what(), Catch::StartsWith("cannot reach the Docker engine at " + uri));
  }
}

TEST_CASE("error statuses carry the daemon's message", "[transport]") {
  FakeEngine engine({{"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n"
                      "{\"message\":\"No such container: deadbeef\"}"}});
  Client client(EngineAddress::parse(engine.uri()));
  try {
    client.start_container("deadbeef");
    FAIL("no error");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::no_such_container);
    CHECK(std::string(e.what()) ==
          "No such container: deadbeef (HTTP 404 from POST /v1.41/containers/deadbeef/start)");
  }
}

TEST_CASE("the engine's version comes with its ping, and from /version only when the ping lacks it",
          "[transport]") {
  FakeEngine engine({{"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nServer: Docker/24.0.7 (linux)\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"},
                     {"HTTP/1.1 200 OK\r\nApi-Version: 1.40\r\nServer: Docker/19.03.1 (linux)\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"}});
  Client client(EngineAddress::parse(engine.uri()));
  auto v = client.check_engine();
  CHECK(v.version == "24.0.7");
  CHECK(v.api_version == "1.43");
  CHECK(engine.request_lines() == std::vector<std::string>{"GET /_ping HTTP/1.1"});
  CHECK_THROWS_WITH(client.check_engine(), "the Docker engine at " + engine.uri() +
                                               " (version 19.03.1) speaks API 1.40, but ce-run needs API 1.41 or "
                                               "newer (Docker 20.10+); upgrade the engine");
}

TEST_CASE("a tcp:// DOCKER_HOST is reached over TCP", "[transport]") {
  FakeEngine engine({{FakeEngine::ok("OK", "text/plain")},
                     {FakeEngine::ok(R"({"Version":"20.10.24","ApiVersion":"1.41"})")}},
                    FakeEngine::Listen::tcp_loopback);
  Client client(EngineAddress::parse(engine.uri()));
  CHECK(client.check_engine().version == "20.10.24");
  CHECK(engine.request_lines() == std::vector<std::string>{"GET /_ping HTTP/1.1", "GET /version HTTP/1.1"});
}
