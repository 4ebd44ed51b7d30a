#include "support/webdriver.h"

#include <Poco/Base64Decoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "support/computation.h"

namespace ce::test {

namespace {

const char* const element_key = "element-6066-11e4-a52e-4f735466cecf";

std::string quoted(const std::string& text) {
  Poco::JSON::Object o;
  o.set("v", text);
  std::ostringstream out;
  o.stringify(out);
  std::string s = out.str();  // {"v":"..."}
  return s.substr(5, s.size() - 6);
}

}  // namespace

Browser::Browser() {
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = probe.address().port();
  }
  driver_pid_ = ::fork();
  if (driver_pid_ == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::string port = "--port=" + std::to_string(port_);
    ::execl("/usr/bin/chromedriver", "chromedriver", port.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  bool up = poll_until(
      [&] {
        try {
          call("GET", "/status");
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      30);
  if (!up) throw std::runtime_error("chromedriver did not start (install chromium-driver: scripts/install-deps)");
  // As the machine's notes say: headless, no sandbox (root), nothing that
  // reaches out to the network.
  std::string args;
  for (const char* a : {"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1400,1000"})
    args += std::string(args.empty() ? "" : ", ") + "\"" + a + "\"";
  args += ", " + quoted("--user-data-dir=" + profile_.str());
  auto value = call("POST", "/session",
                    "{\"capabilities\": {\"alwaysMatch\": {\"browserName\": \"chrome\", \"goog:chromeOptions\": "
                    "{\"binary\": \"/usr/bin/chromium\", \"args\": [" + args + "]}}}}");
  session_ = value.extract<Poco::JSON::Object::Ptr>()->getValue<std::string>("sessionId");
}

Browser::~Browser() {
  try {
    if (!session_.empty()) call("DELETE", "/session/" + session_);
  } catch (...) {
  }
  if (driver_pid_ > 0) {
    ::kill(driver_pid_, SIGTERM);
    int status = 0;
    ::waitpid(driver_pid_, &status, 0);
  }
}

Poco::Dynamic::Var Browser::call(const std::string& method, const std::string& path, const std::string& body) {
  Poco::Net::HTTPClientSession session("127.0.0.1", port_);
  session.setTimeout(Poco::Timespan(60, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (method == "POST") {
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Poco::JSON::Parser parser;
  auto answer = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
  if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK)
    throw std::runtime_error("WebDriver " + method + " " + path + ": " + text);
  return answer->get("value");
}

void Browser::open(const std::string& url) { call("POST", "/session/" + session_ + "/url", "{\"url\": " + quoted(url) + "}"); }

std::optional<std::string> Browser::find(const std::string& css) {
  auto found = call("POST", "/session/" + session_ + "/elements",
                    "{\"using\": \"css selector\", \"value\": " + quoted(css) + "}")
                   .extract<Poco::JSON::Array::Ptr>();
  if (found->size() == 0) return std::nullopt;
  return found->getObject(0)->getValue<std::string>(element_key);
}

std::string Browser::wait_for(const std::string& css, double seconds) {
  std::optional<std::string> element;
  poll_until([&] { return (element = find(css)).has_value(); }, seconds, std::chrono::milliseconds(200));
  if (!element) throw std::runtime_error("no element " + css + " within " + std::to_string(seconds) + " s");
  return *element;
}

void Browser::click(const std::string& element) {
  call("POST", "/session/" + session_ + "/element/" + element + "/click", "{}");
}

std::string Browser::text(const std::string& element) {
  return call("GET", "/session/" + session_ + "/element/" + element + "/text").convert<std::string>();
}

std::string Browser::attribute(const std::string& element, const std::string& name) {
  auto v = call("GET", "/session/" + session_ + "/element/" + element + "/attribute/" + name);
  return v.isEmpty() ? std::string() : v.convert<std::string>();
}

Poco::Dynamic::Var Browser::script(const std::string& body) {
  return call("POST", "/session/" + session_ + "/execute/sync", "{\"script\": " + quoted(body) + ", \"args\": []}");
}

void Browser::screenshot(const std::string& path) {
  std::string encoded = call("GET", "/session/" + session_ + "/screenshot").convert<std::string>();
  std::istringstream in(encoded);
  Poco::Base64Decoder decoder(in);
  std::ofstream out(path, std::ios::binary);
  out << decoder.rdbuf();
}

}  // namespace ce::test
