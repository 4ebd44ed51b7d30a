// The job service for end-to-end tests: `ce-run serve` started as root with
// its own settings, state, GFS and tokens (for the users nobody and daemon),
// on a free loopback port; repositories given to nobody; HTTP requests to it.
#pragma once

#include <Poco/JSON/Object.h>
#include <map>
#include <string>
#include <vector>

#include "support/engine_fixture.h"

namespace ce::test {

struct HttpAnswer {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  Poco::JSON::Object::Ptr json() const;  // throws when the body is not a JSON object
};

class ServiceHost {
 public:
  static constexpr const char* token = "nobody-token-0123456789abcdef";
  static constexpr const char* daemon_token = "daemon-token-0123456789abcdef";

  explicit ServiceHost(int max_calls = 2);
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Starts `ce-run serve` and waits until it answers (its port is then
  // known); `args` are more options.
  void start(const std::vector<std::string>& args = {});
  void stop();   // SIGTERM, and waits for it
  void kill9();  // SIGKILL, and waits for it
  void end(int signal);
  bool running() const { return pid_ > 0; }
  std::string log() const;  // what it wrote to stderr

  HttpAnswer request(const std::string& method, const std::string& path, const std::string& body = {},
                     const std::string& bearer = {}, const std::map<std::string, std::string>& headers = {});
  HttpAnswer get(const std::string& path) { return request("GET", path); }
  // POST /v1/runs as nobody; the run's id (REQUIREs 201).
  std::int64_t submit(const std::string& body);
  // GET /v1/runs/ID until its state is one that ends a run, for at most
  // `seconds`; the last answer.
  Poco::JSON::Object::Ptr wait(std::int64_t id, double seconds = 120);

  // Makes `dir` (a repository the test made) nobody's and readable on the
  // way, and a repository root of the service's (before start()).
  void give(const std::string& dir);
  // A file in the input root, readable by nobody.
  std::string input(const std::string& name, const std::string& content);

  TempDir root;
  std::string conf_dir, state, gfs, inputs;
  // More service.conf lines (after listen, state, tokens, gfs, the roots
  // and max_calls), written by start(); and host.conf's, after its gfs.
  std::string more_conf, more_host_conf;
  std::uint16_t port = 0;

 private:
  void write_conf();
  int max_calls_;
  std::vector<std::string> roots_;
  int pid_ = -1;
};

}  // namespace ce::test
