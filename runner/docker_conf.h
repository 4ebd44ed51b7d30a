// docker.conf: the computation's Docker description, TOML.
// Keys are defined in one table (docker_conf.cc); docs/docker-conf.md is
// their reference. Every error carries file:line:col and what to write.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ce::runner {

// The largest value of each number docker.conf may give; larger ones are
// refused (a number of the engine's or the kernel's would overflow, or mean
// nothing: a timeout of a year is no timeout).
namespace limits {
inline constexpr int cpus = 4096;
inline constexpr std::int64_t memory_bytes = std::int64_t{1} << 50;  // 1024t
inline constexpr std::int64_t pids = 4194304;                       // PID_MAX_LIMIT
inline constexpr std::int64_t timeout_seconds = 365LL * 86400;
}  // namespace limits

struct DockerConf {
  std::string image;    // required: the base image
  std::string name;     // the computation's name; empty: the directory's name
  std::string workdir;  // the command's working directory; empty: COMPDIR
  std::map<std::string, std::string> env;  // for everytime steps and the command
  std::string user;     // empty: the invoking user (SUDO_UID/SUDO_GID under sudo)
  std::string network = "none";
  std::int64_t nano_cpus = 0;     // cpus * 1e9; 0: no limit
  std::int64_t memory_bytes = 0;  // 0: no limit
  std::int64_t pids = 0;          // 0: no limit
  std::int64_t timeout_seconds = 0;  // the command's wall-clock limit; 0: none
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses docker.conf text; `origin` names the file in messages. Throws
// ConfigError "origin:LINE:COL: what; what to do".
DockerConf parse_docker_conf(std::string_view text, const std::string& origin);
DockerConf load_docker_conf(const std::string& path);

// "2g" -> 2147483648; nullopt if not a size. Units k, m, g, t (powers of 1024),
// an optional trailing "b", or none (bytes).
std::optional<std::int64_t> parse_size(std::string_view text);
// "90", "90s", "15m", "2h", "1d" -> seconds; nullopt if not a duration.
std::optional<std::int64_t> parse_duration(std::string_view text);

}  // namespace ce::runner
