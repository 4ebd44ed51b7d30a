// The cancellation token, and a lock wait that it ends.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "docker/cancellation.h"
#include "stages/file_lock.h"
#include "support/engine_fixture.h"

using ce::docker::Cancellation;
using Clock = std::chrono::steady_clock;

TEST_CASE("a stop registered after cancel runs at once, one unregistered never runs", "[cancellation]") {
  Cancellation token;
  int early = 0, late = 0, gone = 0;
  auto first = token.on_cancel([&] { ++early; });
  { auto dropped = token.on_cancel([&] { ++gone; }); }
  CHECK_FALSE(token.cancelled());
  token.cancel();
  token.cancel();  // once is enough
  CHECK(token.cancelled());
  CHECK(early == 1);
  CHECK(gone == 0);
  auto after = token.on_cancel([&] { ++late; });
  CHECK(late == 1);  // sticky: work that starts afterwards stops at once
}

TEST_CASE("wait_for returns as soon as another thread cancels", "[cancellation]") {
  Cancellation token;
  CHECK_FALSE(token.wait_for(std::chrono::milliseconds(10)));
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    token.cancel();
  });
  auto start = Clock::now();
  CHECK(token.wait_for(std::chrono::seconds(60)));
  canceller.join();
  CHECK(Clock::now() - start < std::chrono::seconds(30));
}

TEST_CASE("a lock wait ends when its token is cancelled, and takes a lock given up", "[cancellation][file_lock]") {
  ce::test::TempDir dir;
  std::string path = (dir.path() / "x.lock").string();
  auto holder = std::make_unique<ce::stages::FileLock>(path);
  Cancellation token;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    token.cancel();
  });
  CHECK_THROWS_AS(ce::stages::FileLock(path, ce::stages::Wait::yes, &token), ce::docker::Cancelled);
  canceller.join();

  Cancellation patient;
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    holder.reset();
  });
  ce::stages::FileLock taken(path, ce::stages::Wait::yes, &patient);
  releaser.join();
  CHECK(taken.held());
}
