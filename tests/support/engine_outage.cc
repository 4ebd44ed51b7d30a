#include "support/engine_outage.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>

namespace ce::test {

namespace {

long engine_pid() {
  std::ifstream in("/var/run/docker.pid");
  long pid = 0;
  in >> pid;
  return pid;
}

// A zombie (not yet reaped by whoever started dockerd) is dead too.
bool alive(long pid) {
  if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() || text[close + 2] != 'Z';
}

void start_engine() {
  std::string command = std::string(CE_SOURCE_DIR) + "/scripts/start-docker >/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("scripts/start-docker failed");
}

}  // namespace

EngineOutage::EngineOutage(int sig) {
  long pid = engine_pid();
  if (!alive(pid)) return;
  ::kill(static_cast<pid_t>(pid), sig);
  for (int i = 0; i < 600 && alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stopped_ = !alive(pid);
}

void EngineOutage::restore() {
  if (restored_) return;
  restored_ = true;
  try {
    start_engine();
  } catch (const std::exception& e) {
    // (in a destructor: report, don't throw)
    std::fprintf(stderr, "the engine did not come back: %s\n", e.what());
  }
}

}  // namespace ce::test
