#include "runner/service/http_server.h"

#include "docker/errors.h"

#include <Poco/JSON/Array.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>
#include <chrono>
#include <istream>
#include <ostream>
#include <regex>

namespace ce::runner::service {

using Poco::JSON::Array;
using Poco::JSON::Object;
using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

extern const char* const dashboard_html;  // dashboard.cc

namespace {

constexpr std::size_t log_piece_bytes = 64 * 1024;

void send(HTTPServerResponse& response, int status, const std::string& type, const std::string& body) {
  response.setStatus(static_cast<HTTPResponse::HTTPStatus>(status));
  response.setContentType(type);
  response.set("Cache-Control", "no-store");
  response.set("X-Content-Type-Options", "nosniff");
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  response.send() << body;
}

void send_json(HTTPServerResponse& response, int status, const Object::Ptr& object) {
  send(response, status, "application/json", json_text(object) + "\n");
}

// The request's body, at most `max` bytes (ApiError 413 past it).
std::string read_body(HTTPServerRequest& request, std::size_t max) {
  if (request.hasContentLength() && request.getContentLength64() > static_cast<Poco::Int64>(max))
    throw ApiError(413, "the body is " + std::to_string(request.getContentLength64()) +
                            " bytes; the service takes at most " + std::to_string(max) + " (max_body in service.conf)");
  std::string body;
  std::istream& in = request.stream();
  char buffer[65536];
  while (in) {
    in.read(buffer, sizeof buffer);
    body.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (body.size() > max)
      throw ApiError(413, "the body is larger than " + std::to_string(max) +
                              " bytes, the most the service takes (max_body in service.conf)");
  }
  return body;
}

bool client_gone(HTTPServerRequest& request) {
  try {
    auto& socket = static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket();
    if (!socket.poll(Poco::Timespan(0), Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR))
      return false;
    return socket.available() <= 0;  // readable with nothing to read: closed
  } catch (const std::exception&) {
    return true;
  }
}

Poco::URI uri_of(HTTPServerRequest& request) {
  try {
    return Poco::URI(request.getURI());
  } catch (const Poco::Exception& e) {
    throw ApiError(400, "the request's URI is not valid: " + e.displayText());
  }
}

std::int64_t id_of(const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
    throw ApiError(404, "no run '" + text + "': a run's id is a number");
  return std::stoll(text);
}

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(Service& service, bool public_reads) : service_(service), public_reads_(public_reads) {}

  void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override {
    try {
      route(request, response);
    } catch (const ApiError& e) {
      if (e.status() == 401) response.set("WWW-Authenticate", "Bearer realm=\"ce-run\"");
      if (!response.sent()) send_json(response, e.status(), error_object(e.status(), e.what()));
    } catch (const docker::EngineError& e) {
      if (!response.sent())
        send_json(response, 503, error_object(503, std::string("the Docker engine does not answer: ") + e.what()));
    } catch (const Poco::Net::NetException&) {
      // The client went away.
    } catch (const std::exception& e) {
      if (!response.sent()) send_json(response, 500, error_object(500, std::string("the service failed: ") + e.what()));
    }
  }

 private:
  // The user of the request's bearer token; ApiError 401/403 when there is none.
  std::string authorised(HTTPServerRequest& request, bool change) {
    if (!change && public_reads_) return {};
    if (!service_.has_tokens())
      throw ApiError(403, std::string("the service has no tokens file (tokens in ") + service_.conf().origin +
                              "), so nothing can be " + (change ? "changed" : "read") +
                              " through it; root writes USER TOKEN lines there (docs/service.md)");
    std::string header = request.get("Authorization", "");
    if (header.rfind("Bearer ", 0) != 0)
      throw ApiError(401, "this request needs a token: send the header 'Authorization: Bearer TOKEN'");
    auto user = service_.user_of_token(std::string_view(header).substr(7));
    if (!user) throw ApiError(401, "the bearer token is not one of the service's");
    return *user;
  }

  void route(HTTPServerRequest& request, HTTPServerResponse& response) {
    Poco::URI uri = uri_of(request);
    const std::string& path = uri.getPath();
    const std::string query = uri.getRawQuery();
    const std::string& method = request.getMethod();
    static const std::regex run_path(R"(/v1/runs/([^/]+))"), log_path(R"(/v1/runs/([^/]+)/log)");
    std::smatch m;
    auto only = [&](std::initializer_list<const char*> methods) {
      for (const char* allowed : methods)
        if (method == allowed) return;
      std::string list;
      for (const char* allowed : methods) list += (list.empty() ? "" : ", ") + std::string(allowed);
      response.set("Allow", list);
      throw ApiError(405, path + " takes " + list + ", not " + method);
    };
    if (path == "/" || path == "/index.html") {
      only({"GET"});
      parse_query(query, {});
      send(response, 200, "text/html; charset=utf-8", dashboard_html);
    } else if (path == "/v1/health") {
      only({"GET"});
      Object::Ptr o = new Object;
      o->set("status", "ok");
      send_json(response, 200, o);
    } else if (path == "/v1/runs") {
      only({"GET", "POST"});
      if (method == "POST") return submit(request, response);
      authorised(request, false);
      auto q = parse_query(query, {"state", "repository", "user", "before", "limit"});
      RunFilter filter;
      filter.state = q["state"];
      if (!filter.state.empty() && !std::count(std::begin(run_state::all), std::end(run_state::all), filter.state))
        throw ApiError(400, "state must be queued, running, succeeded, failed or cancelled, not '" + filter.state + "'");
      filter.repository = q["repository"];
      filter.user = q["user"];
      filter.before = query_integer(q, "before", 0, std::numeric_limits<std::int64_t>::max() / 2);
      filter.limit = static_cast<int>(query_integer(q, "limit", 50, 1000));
      if (filter.limit == 0) throw ApiError(400, "limit must be from 1 to 1000");
      auto runs = service_.runs(filter);
      Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      Array::Ptr list = new Array;
      for (const auto& r : runs) list->add(run_summary(r));
      o->set("runs", list);
      if (static_cast<int>(runs.size()) == filter.limit) {
        std::string next = "/v1/runs?before=" + std::to_string(runs.back().id) + "&limit=" + std::to_string(filter.limit);
        for (const char* key : {"state", "repository", "user"}) {
          std::string value = q[key], encoded;
          Poco::URI::encode(value, "&=+?#/", encoded);
          if (!value.empty()) next += "&" + std::string(key) + "=" + encoded;
        }
        o->set("next", next);
      } else {
        o->set("next", Poco::Dynamic::Var());
      }
      send_json(response, 200, o);
    } else if (std::regex_match(path, m, log_path)) {
      only({"GET"});
      authorised(request, false);
      log(request, response, id_of(m[1]), query);
    } else if (std::regex_match(path, m, run_path)) {
      only({"GET", "DELETE"});
      std::int64_t id = id_of(m[1]);
      if (method == "DELETE") {
        std::string user = authorised(request, true);
        auto q = parse_query(query, {"wait"});
        auto wait = query_integer(q, "wait", 30, 600);
        RunRecord r = service_.cancel(user, id, std::chrono::seconds(wait));
        send_json(response, finished_state(r.state) ? 200 : 202, run_detail(r));
        return;
      }
      authorised(request, false);
      // ?wait=SECONDS: answer once the run has ended (or that long passed).
      auto q = parse_query(query, {"wait"});
      if (auto wait = query_integer(q, "wait", 0, 3600); wait > 0)
        service_.wait_finished(id, std::chrono::seconds(wait));
      auto r = service_.run(id);
      if (!r) throw ApiError(404, "no run " + std::to_string(id));
      send_json(response, 200, run_detail(*r));
    } else if (path == "/v1/nodes") {
      only({"GET"});
      authorised(request, false);
      parse_query(query, {});
      send_json(response, 200, service_.nodes());
    } else if (path == "/metrics") {
      only({"GET"});
      authorised(request, false);
      parse_query(query, {});
      send(response, 200, "text/plain; version=0.0.4", service_.metrics());
    } else if (path == "/v1/hooks/commit") {
      only({"POST"});
      authorised(request, true);
      parse_query(query, {});
      CommitHook hook = parse_commit_hook(read_body(request, 64 * 1024));
      auto runs = service_.notify_commit(hook);
      Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      Array::Ptr list = new Array;
      for (const auto& r : runs) list->add(run_summary(r));
      o->set("runs", list);
      send_json(response, 202, o);
    } else {
      throw ApiError(404, "no such path: " + path + " (the API is under /v1: docs/api.md)");
    }
  }

  void submit(HTTPServerRequest& request, HTTPServerResponse& response) {
    std::string user = authorised(request, true);
    parse_query(uri_of(request).getRawQuery(), {});
    std::size_t max = static_cast<std::size_t>(service_.conf().max_body_bytes);
    std::string body = read_body(request, max);
    RunSpec spec = parse_run_request(body, max);
    RunRecord r = service_.submit(user, spec);
    response.set("Location", "/v1/runs/" + std::to_string(r.id));
    send_json(response, 201, run_summary(r));
  }

  void log(HTTPServerRequest& request, HTTPServerResponse& response, std::int64_t id, const std::string& query) {
    auto q = parse_query(query, {"call", "offset", "follow"});
    int call = q.count("call") ? static_cast<int>(query_integer(q, "call", 0, 1 << 20)) : -1;
    auto offset = static_cast<std::uint64_t>(query_integer(q, "offset", 0, std::int64_t{1} << 50));
    std::string follow = q.count("follow") ? q["follow"] : "0";
    if (follow != "0" && follow != "1") throw ApiError(400, "follow must be 0 or 1, not '" + follow + "'");
    bool events = request.get("Accept", "").find("text/event-stream") != std::string::npos;
    if (events) {
      std::string last = request.get("Last-Event-ID", "");
      if (!last.empty()) offset = static_cast<std::uint64_t>(id_of(last));
    }
    LogPiece piece = service_.read_log(id, call, offset, events || follow == "1" ? log_piece_bytes : 16 << 20);
    if (!events && follow == "0") {
      response.set("X-Log-Offset", std::to_string(piece.next));
      response.set("X-Log-Complete", piece.complete ? "1" : "0");
      send(response, 200, "text/plain; charset=utf-8", piece.text);
      return;
    }
    response.setStatus(HTTPResponse::HTTP_OK);
    response.setContentType(events ? "text/event-stream" : "text/plain; charset=utf-8");
    response.set("Cache-Control", "no-store");
    response.set("X-Accel-Buffering", "no");
    response.setChunkedTransferEncoding(true);
    std::ostream& out = response.send();
    auto last_write = std::chrono::steady_clock::now();
    for (;;) {
      if (!piece.text.empty()) {
        if (events) {
          Object::Ptr o = new Object;
          o->set("text", piece.text);
          o->set("offset", piece.next);
          out << "id: " << piece.next << "\nevent: log\ndata: " << json_text(o) << "\n\n";
        } else {
          out << piece.text;
        }
        out.flush();
        if (!out) return;
        last_write = std::chrono::steady_clock::now();
      }
      if (piece.complete) break;
      offset = piece.next;
      service_.wait_log(id, call, offset, std::chrono::seconds(1));
      if (client_gone(request)) return;
      if (events && std::chrono::steady_clock::now() - last_write > std::chrono::seconds(15)) {
        out << ": still running\n\n";
        out.flush();
        if (!out) return;
        last_write = std::chrono::steady_clock::now();
      }
      piece = service_.read_log(id, call, offset, log_piece_bytes);
    }
    if (events) {
      // The state of what was followed: the call's (stored before its log
      // was complete), or the run's.
      auto r = service_.run(id);
      std::string state = r ? r->state : std::string();
      if (r && call >= 0)
        for (const auto& c : r->calls)
          if (c.index == call) state = c.state;
      Object::Ptr o = new Object;
      o->set("state", state);
      out << "event: end\ndata: " << json_text(o) << "\n\n";
      out.flush();
    }
  }

  Service& service_;
  bool public_reads_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(Service& service, bool public_reads) : service_(service), public_reads_(public_reads) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
    return new Handler(service_, public_reads_);
  }

 private:
  Service& service_;
  bool public_reads_;
};

}  // namespace

struct HttpServer::Impl {
  Poco::ThreadPool pool{4, 512, 60};
  std::unique_ptr<Poco::Net::HTTPServer> server;
  std::uint16_t port = 0;
};

HttpServer::HttpServer(Service& service, const ListenAddress& listen) : impl_(std::make_unique<Impl>()) {
  if (!listen.loopback && !service.has_tokens())
    throw std::runtime_error("refusing to listen on " + listen.host + ", not a loopback address, without tokens: "
                             "root writes USER TOKEN lines to the tokens file (" + service.conf().tokens +
                             ") first (docs/service.md)");
  bool public_reads = service.conf().public_reads.value_or(listen.loopback);
  Poco::Net::ServerSocket socket;
  try {
    socket.bind(Poco::Net::SocketAddress(listen.host, listen.port), true);
    socket.listen(256);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot listen on " + listen.host + ":" + std::to_string(listen.port) + ": " +
                             e.displayText());
  }
  impl_->port = socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxQueued(1024);
  params->setMaxThreads(512);
  params->setKeepAlive(true);
  params->setTimeout(Poco::Timespan(60, 0));
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(new Factory(service, public_reads), impl_->pool, socket,
                                                          params);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() { impl_->server->start(); }

void HttpServer::stop() {
  if (!impl_->server) return;
  impl_->server->stopAll(true);
  impl_->pool.joinAll();  // the handlers (log followers too) have returned
}

std::uint16_t HttpServer::port() const { return impl_->port; }

}  // namespace ce::runner::service
