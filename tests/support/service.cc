#include "support/service.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <boost/filesystem.hpp>
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "support/ce_run.h"
#include "support/computation.h"

namespace ce::test {

namespace fs = boost::filesystem;

Poco::JSON::Object::Ptr HttpAnswer::json() const {
  Poco::JSON::Parser parser;
  return parser.parse(body).extract<Poco::JSON::Object::Ptr>();
}

ServiceHost::ServiceHost(int max_calls) : max_calls_(max_calls) {
  ::chmod(root.str().c_str(), 0755);
  conf_dir = root.str() + "/conf";
  state = root.str() + "/state";
  gfs = root.str() + "/gfs";
  inputs = root.str() + "/inputs";
  for (const auto& d : {conf_dir, gfs, inputs}) {
    fs::create_directories(d);
    ::chmod(d.c_str(), 0755);
  }
  std::ofstream(conf_dir + "/tokens") << "nobody " << token << "\ndaemon " << daemon_token << "\n";
  ::chmod((conf_dir + "/tokens").c_str(), 0600);
}

ServiceHost::~ServiceHost() {
  if (pid_ > 0) {
    try {
      stop();
    } catch (...) {
    }
  }
}

void ServiceHost::write_conf() {
  std::ofstream(conf_dir + "/host.conf") << "gfs = [\"" << gfs << "\"]\n" << more_host_conf;
  std::ofstream out(conf_dir + "/service.conf");
  out << "listen = \"127.0.0.1:0\"\nstate = \"" << state << "\"\ntokens = \"" << conf_dir << "/tokens\"\ngfs = \""
      << gfs << "\"\ninput_roots = [\"" << inputs << "\"]\nmax_calls = " << max_calls_ << "\nrepository_roots = [";
  for (std::size_t i = 0; i < roots_.size(); ++i) out << (i ? ", " : "") << "\"" << roots_[i] << "\"";
  out << "]\n" << more_conf;
}

void ServiceHost::give(const std::string& dir) {
  sh(dir, "chown -R 65534:65534 . && chmod 755 .");
  roots_.push_back(dir);
}

std::string ServiceHost::input(const std::string& name, const std::string& content) {
  std::string path = inputs + "/" + name;
  std::ofstream(path) << content;
  ::chmod(path.c_str(), 0644);
  return path;
}

void ServiceHost::start(const std::vector<std::string>& args) {
  write_conf();
  std::vector<std::string> all = {"serve", "--conf", conf_dir + "/service.conf"};
  all.insert(all.end(), args.begin(), args.end());
  fs::remove(root.str() + "/serve.log");  // not the last start's "listening on"
  pid_ = spawn_ce(all, root.str() + "/serve.log", {"CE_RUN_HOST_CONF=" + conf_dir + "/host.conf"});
  static const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
  bool up = poll_until(
      [&] {
        std::smatch m;
        std::string text = log();
        if (!std::regex_search(text, m, listening)) {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("ce-run serve exited: " + text);
          }
          return false;
        }
        port = static_cast<std::uint16_t>(std::stoi(m[1]));
        return true;
      },
      30);
  if (!up) throw std::runtime_error("ce-run serve did not start within 30 s: " + log());
}

void ServiceHost::stop() { end(SIGTERM); }
void ServiceHost::kill9() { end(SIGKILL); }

void ServiceHost::end(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ServiceHost::log() const { return slurp(root.str() + "/serve.log"); }

HttpAnswer ServiceHost::request(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& bearer, const std::map<std::string, std::string>& headers) {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setTimeout(Poco::Timespan(120, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!bearer.empty()) request.set("Authorization", "Bearer " + bearer);
  for (const auto& [k, v] : headers) request.set(k, v);
  if (!body.empty() || method == "POST") {
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  HttpAnswer answer;
  answer.status = static_cast<int>(response.getStatus());
  std::ostringstream text;
  text << in.rdbuf();
  answer.body = text.str();
  for (const auto& [k, v] : response) answer.headers[k] = v;
  return answer;
}

std::int64_t ServiceHost::submit(const std::string& body) {
  HttpAnswer a = request("POST", "/v1/runs", body, token);
  if (a.status != 201) throw std::runtime_error("POST /v1/runs answered " + std::to_string(a.status) + ": " + a.body);
  return a.json()->getValue<std::int64_t>("id");
}

Poco::JSON::Object::Ptr ServiceHost::wait(std::int64_t id, double seconds) {
  Poco::JSON::Object::Ptr last;
  poll_until(
      [&] {
        last = get("/v1/runs/" + std::to_string(id)).json();
        std::string state = last->getValue<std::string>("state");
        return state == "succeeded" || state == "failed" || state == "cancelled";
      },
      seconds, std::chrono::milliseconds(100));
  return last;
}

}  // namespace ce::test
