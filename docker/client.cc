#include "docker/client.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include "docker/attach.h"
#include "docker/json_mapping.h"

namespace ce::docker {

namespace {

// Ordinary requests: long enough for a commit or removal of a large image.
const Poco::Timespan request_timeout(15 * 60, 0);
const Poco::Timespan connect_timeout(10, 0);

std::string query_escape(std::string_view value) {
  std::string out;
  Poco::URI::encode(std::string(value), "!#$&'()*+,/:;=?@[]%\" <>", out);
  return out;
}

std::string path_escape(std::string_view value) {
  std::string out;
  Poco::URI::encode(std::string(value), "?#%\" <>", out);
  return out;
}

// "1.41" -> 1041; unreadable -> 0.
int api_number(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) < 1) return 0;
  return major * 1000 + minor;
}

// Whether a daemon's pull error says that no registry could be reached, as
// opposed to the registry answering (unknown image, denied, ...).
bool is_network_failure(const std::string& message) {
  static const char* const signs[] = {
      "dial tcp",          "lookup ",           "no such host",         "connection refused",
      "i/o timeout",       "network is unreachable", "TLS handshake timeout", "no route to host",
      "Client.Timeout",    "connection reset",  "temporary failure in name resolution",
      "server misbehaving", "request canceled while waiting for connection",
  };
  for (const char* sign : signs) {
    if (message.find(sign) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// One HTTP/1.1 connection to the engine.
class Connection {
 public:
  Connection(const EngineAddress& address, Poco::Timespan receive_timeout)
      : session_(connect(address, receive_timeout)) {
    // Poco would "reconnect" an idle session after its keep-alive timeout,
    // which a session made from a socket cannot do: never let it try.
    session_.setKeepAlive(true);
    session_.setKeepAliveTimeout(Poco::Timespan(365L * 24 * 3600, 0));
  }

  Poco::Net::HTTPClientSession& session() { return session_; }
  bool reused = false;

 private:
  static Poco::Net::StreamSocket connect(const EngineAddress& address, Poco::Timespan receive_timeout) {
    Poco::Net::StreamSocket socket;
    if (address.kind == EngineAddress::Kind::unix_socket)
      socket.connect(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, address.path),
                     connect_timeout);
    else
      socket.connect(Poco::Net::SocketAddress(address.host, address.port), connect_timeout);
    // A session built on a socket never applies its own timeouts to it.
    socket.setReceiveTimeout(receive_timeout);
    socket.setSendTimeout(request_timeout);
    return socket;
  }

  Poco::Net::HTTPClientSession session_;
};

Client::Client(EngineAddress address) : address_(std::move(address)) {}
Client::~Client() = default;

void Client::throw_transport_error(const std::string& endpoint, int error_code,
                                   const std::string& reason, bool connecting) const {
  std::string why = reason;
  if (error_code > 0 && error_code < 4096) why = std::strerror(error_code);
  if (connecting && error_code == EACCES) {
    throw EngineError(ErrorKind::permission_denied,
                      "permission denied on the Docker engine socket " + address_.uri() +
                          ": ce-run must run as root or as a member of the docker group",
                      0, endpoint);
  }
  if (connecting) {
    throw EngineError(ErrorKind::unreachable,
                      "cannot reach the Docker engine at " + address_.uri() + " (" + why +
                          "); start it with scripts/start-docker, or check DOCKER_HOST",
                      0, endpoint);
  }
  throw EngineError(ErrorKind::unreachable,
                    "lost the connection to the Docker engine at " + address_.uri() + " during " +
                        endpoint + " (" + why + "); is the engine still running?",
                    0, endpoint);
}

std::unique_ptr<Connection> Client::acquire() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  return std::make_unique<Connection>(address_, request_timeout);
}

void Client::release(std::unique_ptr<Connection> connection) {
  connection->reused = true;
  std::lock_guard lock(pool_mutex_);
  if (idle_.size() < 4) idle_.push_back(std::move(connection));
}

Client::Response Client::request(const std::string& method, const std::string& path,
                                 const std::string& body, bool versioned, const Headers& headers) {
  const std::string uri = versioned ? std::string("/v") + api_version + path : path;
  const std::string endpoint = method + " " + uri;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> connection;
    try {
      connection = acquire();
    } catch (const Poco::Exception& e) {
      throw_transport_error(endpoint, e.code(), e.displayText(), true);
    }
    const bool reused = connection->reused;
    try {
      Poco::Net::HTTPRequest http_request(method, uri, Poco::Net::HTTPMessage::HTTP_1_1);
      http_request.setHost("docker");
      http_request.setKeepAlive(true);
      for (const auto& [name, value] : headers) http_request.set(name, value);
      if (method != "GET" && method != "HEAD") {
        http_request.setContentType("application/json");
        http_request.setContentLength(static_cast<std::streamsize>(body.size()));
      }
      std::ostream& out = connection->session().sendRequest(http_request);
      out << body;
      Poco::Net::HTTPResponse http_response;
      std::istream& in = connection->session().receiveResponse(http_response);
      in.exceptions(std::ios::badbit);
      Response response;
      Poco::StreamCopier::copyToString(in, response.body);
      response.status = http_response.getStatus();
      response.api_version = http_response.get("Api-Version", "");
      response.server = http_response.get("Server", "");
      if (http_response.getKeepAlive()) release(std::move(connection));
      if (response.status >= 400)
        throw error_from_response(response.status, endpoint, json::parse_error_message(response.body));
      return response;
    } catch (const Poco::Exception& e) {
      // An idle keep-alive connection the engine has closed fails on first
      // use: retry once on a fresh one.
      if (reused && attempt == 0) continue;
      throw_transport_error(endpoint, e.code(), e.displayText(), false);
    } catch (const std::ios_base::failure& e) {
      if (reused && attempt == 0) continue;
      throw_transport_error(endpoint, 0, e.what(), false);
    }
  }
}

void Client::request_stream(const std::string& method, const std::string& path,
                            const std::string& body,
                            const std::function<void(std::string_view)>& on_bytes, const Headers& headers) {
  const std::string uri = std::string("/v") + api_version + path;
  const std::string endpoint = method + " " + uri;
  std::unique_ptr<Connection> connection;
  try {
    // No receive timeout: a command may stay silent for hours.
    connection = std::make_unique<Connection>(address_, Poco::Timespan(0));
  } catch (const Poco::Exception& e) {
    throw_transport_error(endpoint, e.code(), e.displayText(), true);
  }
  try {
    Poco::Net::HTTPRequest http_request(method, uri, Poco::Net::HTTPMessage::HTTP_1_1);
    http_request.setHost("docker");
    http_request.setContentType("application/json");
    http_request.setContentLength(static_cast<std::streamsize>(body.size()));
    for (const auto& [name, value] : headers) http_request.set(name, value);
    std::ostream& out = connection->session().sendRequest(http_request);
    out << body;
    Poco::Net::HTTPResponse http_response;
    std::istream& in = connection->session().receiveResponse(http_response);
    in.exceptions(std::ios::badbit);
    if (http_response.getStatus() >= 400) {
      std::string text;
      Poco::StreamCopier::copyToString(in, text);
      throw error_from_response(http_response.getStatus(), endpoint, json::parse_error_message(text));
    }
    char buffer[16384];
    for (;;) {
      // peek() blocks until some bytes are there; readsome() takes just those,
      // so each piece is handed on as soon as it arrives.
      if (in.peek() == std::char_traits<char>::eof()) break;
      std::streamsize n = in.readsome(buffer, sizeof buffer);
      if (n > 0) on_bytes(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
  } catch (const Poco::Exception& e) {
    throw_transport_error(endpoint, e.code(), e.displayText(), false);
  } catch (const std::ios_base::failure& e) {
    throw_transport_error(endpoint, 0, e.what(), false);
  }
}

Client::Response Client::ping_response() {
  auto response = request("GET", "/_ping", {}, /*versioned=*/false);
  if (response.body != "OK")
    throw EngineError(ErrorKind::protocol,
                      "the engine at " + address_.uri() + " answered /_ping with '" + response.body + "'");
  return response;
}

void Client::ping() { ping_response(); }

EngineVersion Client::version() {
  return json::parse_version(request("GET", "/version", {}, /*versioned=*/false).body);
}

EngineVersion Client::check_engine() {
  auto pong = ping_response();
  EngineVersion v;
  if (pong.api_version.empty()) {
    v = version();
  } else {
    v.api_version = pong.api_version;
    // "Docker/20.10.24+dfsg1 (linux)"
    const std::string prefix = "Docker/";
    v.version = pong.server.rfind(prefix, 0) == 0 ? pong.server.substr(prefix.size(), pong.server.find(' ') - prefix.size())
                                                  : pong.server;
  }
  if (api_number(v.api_version) < api_number(api_version)) {
    throw EngineError(ErrorKind::too_old,
                      "the Docker engine at " + address_.uri() + " (version " + v.version +
                          ") speaks API " + v.api_version + ", but ce-run needs API " + api_version +
                          " or newer (Docker 20.10+); upgrade the engine");
  }
  return v;
}

ImageInfo Client::inspect_image(const std::string& name) {
  return json::parse_image_info(request("GET", "/images/" + path_escape(name) + "/json").body);
}

std::optional<ImageInfo> Client::find_image(const std::string& name) {
  try {
    return inspect_image(name);
  } catch (const EngineError& e) {
    if (e.kind() == ErrorKind::no_such_image) return std::nullopt;
    throw;
  }
}

std::vector<ImageSummary> Client::list_images(const Labels& labels) {
  return json::parse_image_list(
      request("GET", "/images/json?filters=" + query_escape(json::label_filter(labels))).body);
}

void Client::tag_image(const std::string& image, const std::string& repo, const std::string& tag) {
  request("POST", "/images/" + path_escape(image) + "/tag?repo=" + query_escape(repo) +
                      "&tag=" + query_escape(tag));
}

void Client::remove_image(const std::string& image, Force force) {
  request("DELETE", "/images/" + path_escape(image) + "?force=" + (force == Force::yes ? "true" : "false"));
}

void Client::pull_image(const std::string& name, const PullSink& on_progress) {
  // NAME[:TAG] or NAME@DIGEST; a ':' before the last '/' is a registry port.
  std::string repo = name, tag;
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (name.find('@') == std::string::npos && colon != std::string::npos &&
      (slash == std::string::npos || colon > slash)) {
    repo = name.substr(0, colon);
    tag = name.substr(colon + 1);
  } else if (name.find('@') == std::string::npos) {
    tag = "latest";
  }
  auto fail = [&](const std::string& message) -> EngineError {
    if (is_network_failure(message))
      return EngineError(ErrorKind::registry_unreachable,
                         "cannot pull image '" + name + "': no registry is reachable (" + message +
                             "); create the image locally (scripts/make-base-images makes "
                             "busybox:latest and debian:bookworm) or load it with docker load");
    return EngineError(ErrorKind::other, "cannot pull image '" + name + "': " + message);
  };
  std::string path = "/images/create?fromImage=" + query_escape(repo);
  if (!tag.empty()) path += "&tag=" + query_escape(tag);
  std::string pending, error;
  try {
    request_stream("POST", path, {}, [&](std::string_view bytes) {
      pending.append(bytes);
      std::size_t newline;
      while ((newline = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, newline);
        pending.erase(0, newline + 1);
        if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
        PullProgress progress;
        if (!json::parse_pull_line(line, progress, error)) return;
        if (on_progress) on_progress(progress);
      }
    });
  } catch (const EngineError& e) {
    if (e.http_status() >= 400) throw fail(e.daemon_message());
    throw;
  }
  if (error.empty() && !pending.empty()) {
    PullProgress progress;
    if (json::parse_pull_line(pending, progress, error) && on_progress) on_progress(progress);
  }
  if (!error.empty()) throw fail(error);
}

std::string Client::create_container(const ContainerSpec& spec) {
  std::string path = "/containers/create";
  if (!spec.name.empty()) path += "?name=" + query_escape(spec.name);
  return json::parse_id(request("POST", path, json::container_create_body(spec)).body);
}

void Client::start_container(const std::string& id) {
  request("POST", "/containers/" + path_escape(id) + "/start");
}

void Client::stop_container(const std::string& id, int timeout_seconds) {
  request("POST", "/containers/" + path_escape(id) + "/stop?t=" + std::to_string(timeout_seconds));
}

void Client::kill_container(const std::string& id, const std::string& signal) {
  request("POST", "/containers/" + path_escape(id) + "/kill?signal=" + query_escape(signal));
}

int Client::wait_container(const std::string& id) {
  std::string body;
  request_stream("POST", "/containers/" + path_escape(id) + "/wait?condition=not-running", {},
                 [&](std::string_view bytes) { body.append(bytes); });
  return json::parse_wait_status(body);
}

ContainerInfo Client::inspect_container(const std::string& id) {
  return json::parse_container_info(request("GET", "/containers/" + path_escape(id) + "/json").body);
}

std::optional<ContainerInfo> Client::find_container(const std::string& id) {
  try {
    return inspect_container(id);
  } catch (const EngineError& e) {
    if (e.kind() == ErrorKind::no_such_container) return std::nullopt;
    throw;
  }
}

std::vector<ContainerSummary> Client::list_containers(const Labels& labels, Which which) {
  std::string path = "/containers/json?all=";
  path += which == Which::all ? "true" : "false";
  path += "&filters=" + query_escape(json::label_filter(labels));
  return json::parse_container_list(request("GET", path).body);
}

std::size_t Client::container_process_count(const std::string& id) {
  return json::parse_process_count(request("GET", "/containers/" + path_escape(id) + "/top").body);
}

void Client::remove_container(const std::string& id, Force force) {
  request("DELETE", "/containers/" + path_escape(id) + "?v=true&force=" +
                        (force == Force::yes ? "true" : "false"));
}

std::string Client::create_exec(const std::string& container, const ExecSpec& spec) {
  return json::parse_id(
      request("POST", "/containers/" + path_escape(container) + "/exec", json::exec_create_body(spec)).body);
}

void Client::start_exec(const std::string& exec_id, const OutputSink& sink) {
  StreamDemux demux(sink);
  request_stream("POST", "/exec/" + path_escape(exec_id) + "/start", R"({"Detach":false,"Tty":false})",
                 [&](std::string_view bytes) { demux.feed(bytes); });
  demux.finish();
}

ExecState Client::exec_state(const std::string& exec_id) {
  return json::parse_exec_state(request("GET", "/exec/" + path_escape(exec_id) + "/json").body);
}

ExecState Client::inspect_exec(const std::string& exec_id) {
  // The engine closes the output streams and records the exit code in two
  // separate steps: give it a moment to catch up.
  auto delay = std::chrono::milliseconds(1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto state = exec_state(exec_id);
    if (!state.running || std::chrono::steady_clock::now() > deadline) return state;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
}

int Client::run_exec(const std::string& container, const ExecSpec& spec, const OutputSink& sink,
                     const std::function<void(const std::string&)>& on_created) {
  auto id = create_exec(container, spec);
  if (on_created) on_created(id);
  start_exec(id, sink);
  auto state = inspect_exec(id);
  if (state.running)
    throw EngineError(ErrorKind::protocol, "exec " + id + " in container " + container +
                                               " still runs after its output streams closed");
  return state.exit_code;
}

int Client::run_supervised_exec(const std::string& container, const ExecSpec& spec, const std::string& supervisor,
                                const OutputSink& sink, const std::function<void(const std::string&)>& on_created,
                                Cancellation* cancel) {
  ExecSpec supervised = spec;
  supervised.cmd = {supervisor, "--"};
  supervised.cmd.insert(supervised.cmd.end(), spec.cmd.begin(), spec.cmd.end());
  supervised.attach_stdin = true;  // the lifeline: never written to
  supervised.tty = false;
  auto id = create_exec(container, supervised);
  if (on_created) on_created(id);
  if (cancel && cancel->cancelled()) return 128 + SIGTERM;
  AttachedExec attached(address_, id, false);
  std::optional<Cancellation::Registration> stop;
  if (cancel) stop.emplace(cancel->on_cancel([&attached] { attached.close_input(); }));
  StreamDemux demux(sink);
  char buffer[65536];
  for (long n; (n = attached.read(buffer, sizeof buffer)) > 0;)
    demux.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
  stop.reset();
  // Streams closed: the exec has ended, or the engine went away (then the
  // inspection says so, before a frame cut short does).
  auto state = inspect_exec(id);
  demux.finish();
  if (state.running)
    throw EngineError(ErrorKind::protocol, "exec " + id + " in container " + container +
                                               " still runs after its output streams closed");
  return state.exit_code;
}

void Client::resize_exec(const std::string& exec_id, int rows, int columns) {
  request("POST", "/exec/" + path_escape(exec_id) + "/resize?h=" + std::to_string(rows) + "&w=" +
                      std::to_string(columns));
}

std::string Client::commit(const CommitSpec& spec) {
  std::string path =
      "/commit?container=" + query_escape(spec.container) + (spec.pause ? "&pause=true" : "&pause=false");
  if (!spec.repo.empty()) path += "&repo=" + query_escape(spec.repo);
  if (!spec.tag.empty()) path += "&tag=" + query_escape(spec.tag);
  if (!spec.comment.empty()) path += "&comment=" + query_escape(spec.comment);
  return json::parse_id(request("POST", path, json::commit_body(spec)).body);
}

}  // namespace ce::docker

namespace ce::docker {

EngineInfo Client::info() { return json::parse_engine_info(request("GET", "/info").body); }

SwarmState Client::swarm_state() { return info().swarm; }

std::vector<NodeInfo> Client::list_nodes() { return json::parse_node_list(request("GET", "/nodes").body); }

std::string Client::create_job(const JobSpec& spec, const std::string& auth) {
  Headers headers;
  if (!auth.empty()) headers.emplace_back("X-Registry-Auth", auth);
  return json::parse_service_id(
      request("POST", "/services/create", json::job_create_body(spec), true, headers).body);
}

std::vector<ServiceSummary> Client::list_services(const Labels& labels) {
  return json::parse_service_list(
      request("GET", "/services?filters=" + query_escape(json::label_filter(labels))).body);
}

std::vector<TaskInfo> Client::list_tasks(const std::string& service_id) {
  std::string filter = R"({"service":[")" + service_id + R"("]})";
  return json::parse_task_list(request("GET", "/tasks?filters=" + query_escape(filter)).body);
}

void Client::remove_service(const std::string& id) {
  try {
    request("DELETE", "/services/" + path_escape(id));
  } catch (const EngineError& e) {
    if (e.http_status() != 404) throw;
  }
}

std::string Client::push_image(const std::string& repo, const std::string& tag, const std::string& auth) {
  // The engine insists on the header; "{}" (encoded) is anonymous.
  Headers headers{{"X-Registry-Auth", auth.empty() ? "e30=" : auth}};
  std::string pending, error, digest;
  auto line_done = [&](const std::string& line) {
    if (line.find_first_not_of(" \r\t") == std::string::npos) return;
    PullProgress progress;
    if (!json::parse_pull_line(line, progress, error)) return;
    if (std::string d = json::parse_push_digest(line); !d.empty()) digest = d;
  };
  request_stream("POST", "/images/" + path_escape(repo) + "/push?tag=" + query_escape(tag), {},
                 [&](std::string_view bytes) {
                   pending.append(bytes);
                   for (std::size_t newline; (newline = pending.find('\n')) != std::string::npos;) {
                     line_done(pending.substr(0, newline));
                     pending.erase(0, newline + 1);
                   }
                 },
                 headers);
  if (!pending.empty()) line_done(pending);
  if (!error.empty()) throw EngineError(ErrorKind::other, "cannot push " + repo + ":" + tag + ": " + error);
  if (digest.empty())
    throw EngineError(ErrorKind::protocol, "the engine pushed " + repo + ":" + tag + " but named no digest");
  return digest;
}

std::optional<std::string> Client::registry_digest(const std::string& name, const std::string& auth) {
  Headers headers;
  if (!auth.empty()) headers.emplace_back("X-Registry-Auth", auth);
  try {
    std::string digest =
        json::parse_distribution_digest(request("GET", "/distribution/" + path_escape(name) + "/json", {}, true, headers).body);
    if (digest.empty()) return std::nullopt;
    return digest;
  } catch (const EngineError& e) {
    // 401/403/404 (and the engine's 500 for a manifest unknown): none to use.
    if (e.http_status() >= 400) return std::nullopt;
    throw;
  }
}

}  // namespace ce::docker
