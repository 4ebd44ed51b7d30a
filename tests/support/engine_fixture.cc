#include "support/engine_fixture.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace ce::test {

namespace {
std::string unique_token() {
  static std::atomic<int> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::to_string(::getpid()) + "-" + std::to_string(now) + "-" + std::to_string(counter++);
}
}  // namespace

TempDir::TempDir(Storage storage) {
  boost::system::error_code ec;
  boost::filesystem::path base = storage == Storage::memory && boost::filesystem::is_directory("/dev/shm", ec) &&
                                         ::access("/dev/shm", W_OK) == 0
                                     ? boost::filesystem::path("/dev/shm")
                                     : boost::filesystem::temp_directory_path();
  path_ = base / ("ce-test-" + unique_token());
  boost::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  if (std::uncaught_exceptions() > 0) {
    std::cerr << "test failed: keeping " << path_ << "\n";
    return;
  }
  boost::system::error_code ec;
  boost::filesystem::remove_all(path_, ec);
}

std::size_t remove_images(docker::Client& client, const docker::Labels& labels) {
  // Each pass removes the images nothing depends on; a chain of N stages
  // takes N passes.
  for (int pass = 0; pass < 50; ++pass) {
    auto images = client.list_images(labels);
    if (images.empty()) return 0;
    bool progress = false;
    for (const auto& image : images) {
      try {
        client.remove_image(image.id, docker::Force::yes);
        progress = true;
      } catch (const docker::EngineError& e) {
        if (e.kind() == docker::ErrorKind::no_such_image) progress = true;
      }
    }
    if (!progress) return images.size();
  }
  return client.list_images(labels).size();
}

EngineFixture::EngineFixture() {
  labels_ = {{"ce-run.test", unique_token()}};
  // A [docker] test without an engine fails here, with the client's message.
  client.check_engine();
  REQUIRE(client.find_image("busybox:latest").has_value());
}

EngineFixture::~EngineFixture() {
  try {
    for (const auto& c : client.list_containers(labels_, docker::Which::all))
      client.remove_container(c.id, docker::Force::yes);
    if (remove_images(client, labels_) != 0) throw std::runtime_error("images are left");
  } catch (const std::exception& e) {
    std::cerr << "cleanup of test resources labelled ce-run.test=" << labels_.begin()->second
              << " failed: " << e.what() << "\n";
  }
}

std::string EngineFixture::create(docker::ContainerSpec spec) {
  for (const auto& [k, v] : labels_) spec.labels[k] = v;
  return client.create_container(spec);
}

std::string EngineFixture::start_busybox(std::vector<docker::Bind> binds) {
  docker::ContainerSpec spec;
  spec.image = "busybox:latest";
  spec.cmd = {"sleep", "3600"};
  spec.init = true;
  spec.binds = std::move(binds);
  auto id = create(spec);
  client.start_container(id);
  return id;
}

int EngineFixture::exec(const std::string& container, std::vector<std::string> cmd, std::string* out,
                        std::string* err) {
  docker::ExecSpec spec;
  spec.cmd = std::move(cmd);
  return client.run_exec(container, spec, [&](docker::StreamKind kind, std::string_view bytes) {
    if (kind == docker::StreamKind::stderr_stream) {
      if (err) err->append(bytes);
    } else if (out) {
      out->append(bytes);
    }
  });
}

// KEY=value of `scripts/start-swarm env`.
std::string swarm_setting(const std::string& key) {
  std::string command = std::string(CE_SOURCE_DIR) + "/scripts/start-swarm env";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  ::pclose(pipe);
  auto at = out.find(key + "=");
  REQUIRE(at != std::string::npos);
  auto start = at + key.size() + 1;
  return out.substr(start, out.find('\n', start) - start);
}

}  // namespace ce::test
