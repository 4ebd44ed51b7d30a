#include <catch2/catch.hpp>

#include "docker/errors.h"

using ce::docker::error_from_response;
using ce::docker::ErrorKind;

TEST_CASE("404s are told apart by what is missing", "[errors]") {
  CHECK(error_from_response(404, "GET /v1.41/images/nope/json", "No such image: nope:latest").kind() ==
        ErrorKind::no_such_image);
  CHECK(error_from_response(404, "POST /v1.41/containers/create", "No such image: nope:latest").kind() ==
        ErrorKind::no_such_image);
  CHECK(error_from_response(404, "GET /v1.41/containers/abc/json", "No such container: abc").kind() ==
        ErrorKind::no_such_container);
  // An engine that words it differently: the endpoint decides.
  CHECK(error_from_response(404, "DELETE /v1.41/containers/abc", "gone").kind() == ErrorKind::no_such_container);
  CHECK(error_from_response(404, "DELETE /v1.41/images/x", "gone").kind() == ErrorKind::no_such_image);
  CHECK(error_from_response(404, "GET /v1.41/exec/1/json", "No such exec instance: 1").kind() ==
        ErrorKind::no_such_exec);
  CHECK(error_from_response(404, "GET /v1.41/networks/x", "network x not found").kind() == ErrorKind::not_found);
}

TEST_CASE("an engine error says the daemon's message, the status and the endpoint", "[errors]") {
  auto e = error_from_response(409, "POST /v1.41/containers/create?name=x", "Conflict. The name is in use");
  CHECK(e.kind() == ErrorKind::conflict);
  CHECK(e.http_status() == 409);
  CHECK(e.endpoint() == "POST /v1.41/containers/create?name=x");
  CHECK(e.daemon_message() == "Conflict. The name is in use");
  CHECK(std::string(e.what()) ==
        "Conflict. The name is in use (HTTP 409 from POST /v1.41/containers/create?name=x)");
}
