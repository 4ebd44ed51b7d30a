// libFuzzer target: docker.conf parsing. Any input must give a DockerConf or
// a ConfigError that names a place: no crash, hang or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/docker_conf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ce::runner::parse_docker_conf(text, "docker.conf");
  } catch (const ce::runner::ConfigError& e) {
    if (std::string_view(e.what()).rfind("docker.conf:", 0) != 0) __builtin_trap();  // every error has a place
  }
  return 0;
}
