// The service's dashboard in a real browser (headless Chromium through
// chromedriver): a task submitted through the API appears, its calls turn
// done in the graph, a call's log opens. Screenshots are kept as test
// artifacts in build/test-artifacts/dashboard/.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>

#include "support/computation.h"
#include "support/service.h"
#include "support/task.h"
#include "support/webdriver.h"

using namespace ce::test;

TEST_CASE("the dashboard in a browser: a submitted task appears, its calls turn done, a call's log opens",
          "[docker][service][browser]") {
  TaskDir t;
  upper_count_task(t, "sleep 1; ");
  ServiceHost host;
  host.give(t.path());
  std::string text = host.input("t.txt", "shown\n");
  host.start();
  std::string shots = std::string(CE_BINARY_DIR) + "/test-artifacts/dashboard";
  boost::filesystem::create_directories(shots);

  Browser browser;
  std::string base = "http://127.0.0.1:" + std::to_string(host.port) + "/";
  browser.open(base);
  browser.wait_for("#nodes .node");  // the engine, with its resources
  browser.screenshot(shots + "/1-empty.png");

  std::int64_t id = host.submit("{\"repository\": \"" + t.path() + "\", \"inputs\": [\"" + text + "\"]}");
  std::string row = browser.wait_for("tr[data-run-id='" + std::to_string(id) + "']", 10);
  CHECK(browser.text(row).find(boost::filesystem::path(t.path()).filename().string()) != std::string::npos);
  browser.click(row);
  // The graph: two calls, the second needing the first.
  browser.wait_for("#graph g.call[data-call='1']");
  CHECK(browser.find("#graph line"));
  browser.screenshot(shots + "/2-running.png");
  bool done = poll_until(
      [&] {
        return browser.script("return [...document.querySelectorAll('#graph g.call')].map(g => g.dataset.state)"
                              ".join(',');")
                   .convert<std::string>() == "computed,computed";
      },
      60, std::chrono::milliseconds(200));
  CHECK(done);
  browser.wait_for("tr[data-run-id='" + std::to_string(id) + "'][data-state='succeeded']");
  browser.screenshot(shots + "/3-done.png");

  // A call's log, from the graph.
  browser.click(browser.wait_for("#graph g.call[data-call='0']"));
  bool logged = poll_until(
      [&] { return browser.text(browser.wait_for("#log")).find("upper-said-SHOWN") != std::string::npos; }, 30,
      std::chrono::milliseconds(200));
  CHECK(logged);
  CHECK(browser.text(browser.wait_for("#log-title")) == "Log of run " + std::to_string(id) + ", call 0");
  browser.screenshot(shots + "/4-log.png");
  CHECK(boost::filesystem::file_size(shots + "/4-log.png") > 10000);
}
