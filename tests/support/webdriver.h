// A headless Chromium driven over the W3C WebDriver protocol (Debian's
// chromium and chromium-driver), for the dashboard's browser test: open a
// page, find and click elements, read their text and attributes, take
// screenshots.
#pragma once

#include <Poco/JSON/Object.h>
#include <optional>
#include <string>

#include "support/engine_fixture.h"

namespace ce::test {

class Browser {
 public:
  // Starts chromedriver on a free port and a headless Chromium session.
  Browser();
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  void open(const std::string& url);
  // The first element matching the CSS selector, or nullopt.
  std::optional<std::string> find(const std::string& css);
  // Waits up to `seconds` for one; throws naming the selector.
  std::string wait_for(const std::string& css, double seconds = 30);
  void click(const std::string& element);
  std::string text(const std::string& element);
  std::string attribute(const std::string& element, const std::string& name);
  // The value of a JavaScript expression (`return ...;` in a function body).
  Poco::Dynamic::Var script(const std::string& body);
  // A PNG of the page, written to `path`.
  void screenshot(const std::string& path);

 private:
  Poco::Dynamic::Var call(const std::string& method, const std::string& path, const std::string& body = "");
  TempDir profile_;
  int driver_pid_ = -1;
  std::uint16_t port_ = 0;
  std::string session_;
};

}  // namespace ce::test
