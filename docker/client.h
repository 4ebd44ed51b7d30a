// A client for the Docker Engine REST API v1.41 over a Unix socket (or plain
// TCP), on Poco::Net.
//
// How it talks to the engine:
// - Each request is HTTP/1.1 on a connection from a small pool of keep-alive
//   connections (guarded by a mutex, so one Client may serve several
//   threads). A connection the engine closed while idle is noticed on its
//   next use, dropped, and the request retried once on a new one.
// - Requests that stream (exec output, pull progress, wait) take a
//   connection of their own, never returned to the pool: the engine hijacks
//   it, and concurrent streams must not share one.
// - Poco's HTTPClientSession built on an already connected socket cannot
//   reconnect (it has no host), and its setHost() throws; so we set the Host
//   header on each request and open a new socket ourselves.
// Every request carries the /v1.41 prefix: the engine answers exactly as its
// v1.41 API documents, whatever its own version.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "docker/cancellation.h"
#include "docker/engine_address.h"
#include "docker/errors.h"
#include "docker/stream_demux.h"
#include "docker/types.h"

namespace ce::docker {

class Connection;

enum class Force { no, yes };
enum class Which { running, all };

using OutputSink = std::function<void(StreamKind, std::string_view)>;
using PullSink = std::function<void(const PullProgress&)>;

class Client {
 public:
  static constexpr const char* api_version = "1.41";

  explicit Client(EngineAddress address = EngineAddress::from_environment());
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const EngineAddress& address() const { return address_; }

  // GET /_ping. Throws EngineError(unreachable | permission_denied).
  void ping();
  EngineVersion version();
  // Refuses an engine whose API is older than 1.41. One /_ping, whose
  // Api-Version and Server headers say it all; GET /version only when the
  // engine leaves them out.
  EngineVersion check_engine();

  // Images.
  ImageInfo inspect_image(const std::string& name);
  // nullopt when the engine has no such image.
  std::optional<ImageInfo> find_image(const std::string& name);
  std::vector<ImageSummary> list_images(const Labels& labels);
  void tag_image(const std::string& image, const std::string& repo, const std::string& tag);
  void remove_image(const std::string& image, Force force = Force::no);
  // Pulls NAME[:TAG] (TAG defaults to latest), reporting progress as it comes.
  // Throws EngineError(registry_unreachable) naming the image when no
  // registry answers.
  void pull_image(const std::string& name, const PullSink& on_progress = {});

  // Containers. Returns the new container's id.
  std::string create_container(const ContainerSpec& spec);
  void start_container(const std::string& id);  // already running: no error
  void stop_container(const std::string& id, int timeout_seconds = 10);  // already stopped: no error
  void kill_container(const std::string& id, const std::string& signal = "SIGKILL");
  // Blocks until the container is not running; returns its exit code.
  int wait_container(const std::string& id);
  ContainerInfo inspect_container(const std::string& id);
  std::optional<ContainerInfo> find_container(const std::string& id);
  std::vector<ContainerSummary> list_containers(const Labels& labels, Which which = Which::all);
  void remove_container(const std::string& id, Force force = Force::no);
  // How many processes run in a running container (GET /containers/{id}/top).
  std::size_t container_process_count(const std::string& id);

  // Exec. create_exec returns the exec id; start_exec hands stdout and stderr
  // to `sink` chunk by chunk as they arrive and returns when both close.
  std::string create_exec(const std::string& container, const ExecSpec& spec);
  void start_exec(const std::string& exec_id, const OutputSink& sink);
  // The exec's state; waits briefly for the engine to record the exit code of
  // a command whose streams have closed.
  ExecState inspect_exec(const std::string& exec_id);
  // The exec's state now, in one request.
  ExecState exec_state(const std::string& exec_id);
  // create + start + inspect: the command's exit code. `on_created` learns
  // the exec's id before it starts (to inspect or stop it from elsewhere).
  int run_exec(const std::string& container, const ExecSpec& spec, const OutputSink& sink,
               const std::function<void(const std::string&)>& on_created = {});

  // An exec whose processes end with our connection to it: COMMAND runs
  // under ce-run-supervise (docker/supervise.cc; `supervisor` is its path in
  // the container) with standard input attached as its lifeline. When
  // `cancel` is cancelled we close our side of that input; when this
  // process dies the kernel closes it; either way the supervisor stops the
  // command's whole tree (SIGTERM, SIGKILL after 5 s) and we return when it
  // has. No process of the engine's host is signalled, so this works on a
  // remote engine too. Returns the exit code (143 when stopped; the caller
  // knows why from its token). Cancelled before the exec starts: it is
  // never started, and 143 is returned.
  int run_supervised_exec(const std::string& container, const ExecSpec& spec, const std::string& supervisor,
                          const OutputSink& sink, const std::function<void(const std::string&)>& on_created,
                          Cancellation* cancel);

  // Tells a TTY exec its terminal's size.
  void resize_exec(const std::string& exec_id, int rows, int columns);

  // Commits a container into an image; returns the image id.
  std::string commit(const CommitSpec& spec);

  // Swarm (docs/fleet.md). `auth` is an X-Registry-Auth value
  // (base64url of json::registry_auth's JSON); empty: anonymous.
  EngineInfo info();         // GET /info
  SwarmState swarm_state();  // its swarm part
  std::vector<NodeInfo> list_nodes();
  // Creates a job (json::job_create_body); returns the service's ID.
  std::string create_job(const JobSpec& spec, const std::string& auth = {});
  std::vector<ServiceSummary> list_services(const Labels& labels);
  // A service's tasks, newest state last as the engine gives them.
  std::vector<TaskInfo> list_tasks(const std::string& service_id);
  // Deletes a service: its tasks' containers are stopped (SIGTERM, then
  // SIGKILL after the grace period) and removed by their nodes. Gone
  // already: no error.
  void remove_service(const std::string& id);
  // Pushes REPO:TAG to its registry; returns the manifest's digest.
  std::string push_image(const std::string& repo, const std::string& tag, const std::string& auth = {});
  // The digest a registry holds for NAME (REPO:TAG); nullopt when it holds
  // none (or refuses to say).
  std::optional<std::string> registry_digest(const std::string& name, const std::string& auth = {});

 private:
  struct Response {
    int status = 0;
    std::string body;
    std::string api_version;  // the Api-Version header
    std::string server;       // the Server header
  };

  using Headers = std::vector<std::pair<std::string, std::string>>;
  Response request(const std::string& method, const std::string& path,
                   const std::string& body = {}, bool versioned = true, const Headers& headers = {});
  Response ping_response();
  // A request on a connection of its own; the response body is handed to
  // `on_bytes` as it arrives. Error statuses throw with the daemon's message.
  void request_stream(const std::string& method, const std::string& path,
                      const std::string& body,
                      const std::function<void(std::string_view)>& on_bytes, const Headers& headers = {});
  std::unique_ptr<Connection> acquire();
  void release(std::unique_ptr<Connection> connection);
  [[noreturn]] void throw_transport_error(const std::string& endpoint, int error_code,
                                          const std::string& reason, bool connecting) const;

  EngineAddress address_;
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace ce::docker
