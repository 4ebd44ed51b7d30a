// The job service's HTTP side (docs/api.md): Poco::Net's HTTP server, the
// /v1 routes onto a Service, bearer tokens, bounded bodies, logs streamed
// as they grow (chunked text or server-sent events), and the dashboard.
#pragma once

#include <cstdint>
#include <memory>

#include "runner/service/service.h"

namespace ce::runner::service {

class HttpServer {
 public:
  // Binds `listen` (port 0: any free one). Refuses (std::runtime_error) an
  // address other than loopback when the service has no tokens.
  HttpServer(Service& service, const ListenAddress& listen);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void start();
  // Stops taking connections and ends those open (log followers included).
  void stop();
  std::uint16_t port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ce::runner::service
