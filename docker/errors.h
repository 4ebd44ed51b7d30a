// Errors of the Docker Engine client.
//
// Every failure the engine reports becomes an EngineError carrying the HTTP
// status, the endpoint ("POST /containers/create") and the daemon's own
// message, plus a kind the caller can branch on without parsing text:
// "no such image" and "no such container" are distinct kinds.
#pragma once

#include <stdexcept>
#include <string>

namespace ce::docker {

enum class ErrorKind {
  unreachable,        // no connection to the engine at all
  permission_denied,  // the socket exists but we may not use it
  protocol,           // the engine answered something we cannot read
  too_old,            // the engine's API is older than we need
  no_such_image,
  no_such_container,
  no_such_exec,
  not_found,          // another 404
  conflict,           // 409: name in use, container not running, ...
  registry_unreachable,  // a pull that could not reach any registry
  other,
};

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorKind kind, std::string message, int http_status = 0,
              std::string endpoint = {}, std::string daemon_message = {});

  ErrorKind kind() const { return kind_; }
  int http_status() const { return http_status_; }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& daemon_message() const { return daemon_message_; }

 private:
  ErrorKind kind_;
  int http_status_;
  std::string endpoint_;
  std::string daemon_message_;
};

// Builds the error for an HTTP error status: kind from the status and the
// daemon's message, text "<daemon message> (HTTP <status> from <endpoint>)".
EngineError error_from_response(int status, const std::string& endpoint,
                                const std::string& daemon_message);

}  // namespace ce::docker
