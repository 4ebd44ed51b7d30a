// `ce-run serve`: the job service (runner/service/) in the foreground until
// SIGINT or SIGTERM, its events as log lines on stderr (journald's, under
// systemd: examples/ce-run.service).
#include <boost/filesystem.hpp>
#include <csignal>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "runner/cli/signals.h"
#include "runner/cli/subcommands.h"
#include "runner/service/http_server.h"
#include "runner/service/service.h"

namespace ce::runner {

int run_serve(const Command& command) {
  using namespace service;
  bool conf_given = !command.conf.empty();
  std::string conf_path = conf_given ? boost::filesystem::absolute(command.conf).string() : default_conf;
  ServiceSettings settings;
  settings.conf = load_service_conf(conf_path, conf_given);
  if (!command.listen.empty()) settings.conf.listen = command.listen;
  if (!command.state_dir.empty()) settings.conf.state = boost::filesystem::absolute(command.state_dir).string();
  ListenAddress listen = parse_listen(settings.conf.listen);
  settings.tokens = load_tokens(settings.conf.tokens);
  // Root's environment (the service's own) may name root's host.conf, as
  // for root's own calls; the users' calls get that one.
  if (const char* host_conf = std::getenv("CE_RUN_HOST_CONF"); host_conf && *host_conf)
    settings.host_conf = host_conf;
  settings.log = [](LogLevel level, const std::string& text) {
    switch (level) {
      case LogLevel::info: spdlog::info("{}", text); break;
      case LogLevel::warning: spdlog::warn("warning: {}", text); break;
      case LogLevel::error: spdlog::error("error: {}", text); break;
    }
  };
  if (!settings.tokens)
    spdlog::warn("warning: no tokens file {}: the service takes no run (docs/service.md)", settings.conf.tokens);
  else
    spdlog::info("{} token(s) for {} user(s) from {}", settings.tokens->user_of.size(), settings.tokens->users.size(),
                 settings.conf.tokens);

  docker::Cancellation stop;
  StopWatch signals(stop);
  Service service(settings);
  HttpServer server(service, listen);
  service.start();
  server.start();
  spdlog::info("ce-run serve: listening on http://{}:{} (state {}, at most {} calls at once{})",
               listen.host.find(':') != std::string::npos ? "[" + listen.host + "]" : listen.host, server.port(),
               settings.conf.state, service.max_calls(), settings.conf.swarm ? ", on the swarm" : "");
  while (!stop.wait_for(std::chrono::hours(1))) {
  }
  spdlog::info("ce-run serve: stopping ({}); running runs run again at the next start",
               signals.signal() == SIGTERM ? "SIGTERM" : "SIGINT");
  server.stop();
  service.stop();
  return 0;
}

}  // namespace ce::runner
