#include "docker/errors.h"

namespace ce::docker {

EngineError::EngineError(ErrorKind kind, std::string message, int http_status,
                         std::string endpoint, std::string daemon_message)
    : std::runtime_error(std::move(message)),
      kind_(kind),
      http_status_(http_status),
      endpoint_(std::move(endpoint)),
      daemon_message_(std::move(daemon_message)) {}

namespace {

bool starts_with_nocase(const std::string& text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

// The path of an endpoint without the method and the API version prefix:
// "GET /v1.41/images/x/json" -> "/images/x/json".
std::string_view resource_of(std::string_view endpoint) {
  auto space = endpoint.find(' ');
  if (space != std::string_view::npos) endpoint.remove_prefix(space + 1);
  if (endpoint.rfind("/v", 0) == 0) {
    auto slash = endpoint.find('/', 1);
    if (slash != std::string_view::npos) endpoint.remove_prefix(slash);
  }
  return endpoint;
}

}  // namespace

EngineError error_from_response(int status, const std::string& endpoint,
                                const std::string& daemon_message) {
  ErrorKind kind = ErrorKind::other;
  if (status == 404) {
    // The daemon's text is the reliable signal: creating a container from a
    // missing image is a 404 on a /containers endpoint.
    if (starts_with_nocase(daemon_message, "no such image"))
      kind = ErrorKind::no_such_image;
    else if (starts_with_nocase(daemon_message, "no such container"))
      kind = ErrorKind::no_such_container;
    else if (starts_with_nocase(daemon_message, "no such exec"))
      kind = ErrorKind::no_such_exec;
    else {
      auto resource = resource_of(endpoint);
      if (resource.rfind("/images/", 0) == 0)
        kind = ErrorKind::no_such_image;
      else if (resource.rfind("/containers/", 0) == 0 &&
               resource.rfind("/containers/create", 0) != 0)
        kind = ErrorKind::no_such_container;
      else if (resource.rfind("/exec/", 0) == 0)
        kind = ErrorKind::no_such_exec;
      else
        kind = ErrorKind::not_found;
    }
  } else if (status == 409) {
    kind = ErrorKind::conflict;
  }
  std::string text = daemon_message.empty() ? "the engine gave no message" : daemon_message;
  text += " (HTTP " + std::to_string(status) + " from " + endpoint + ")";
  return EngineError(kind, std::move(text), status, endpoint, daemon_message);
}

}  // namespace ce::docker
