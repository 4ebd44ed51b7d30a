// docker.conf: the computation's Docker description, TOML.
// Keys are defined in one table (docker_conf.cc); docs/docker-conf.md is
// their reference. Every error carries file:line:col and what to write.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// Environment names docker.conf's `env` may not set (docs/docker-conf.md
// lists them). ce-run sets COMPDIR, GFSDIR, CE_COMMIT and CE_STAGE itself; a
// PATH replaces the image's and can stop the container from starting. A
// name ending in '*' stands for every name that starts with what precedes it.
inline constexpr std::array<std::string_view, 6> reserved_env_names = {"COMPDIR", "GFSDIR",  "CE_COMMIT",
                                                                       "CE_STAGE", "PATH", "CE_RUN_*"};

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
  std::vector<std::string> placement;  // Swarm constraints for a fleet call ("node.labels.gpu == true")

  // For the messages of checks made after parsing (apply_host_policy).
  std::string origin;                                    // the file, as in "docker.conf:3:1:"
  std::map<std::string, std::pair<int, int>> positions;  // each key given: its line and column
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses docker.conf text; `origin` names the file in messages. Throws
// ConfigError "origin:LINE:COL: what; what to do".
DockerConf parse_docker_conf(std::string_view text, const std::string& origin);
DockerConf load_docker_conf(const std::string& path);

// What is wrong with `reference` as the image to run, or nullopt if nothing.
// The message is safe to print (control characters escaped) and reads after
// "is not an image reference: ". Docker's grammar (distribution/reference),
// without IPv6 addresses as hosts:
//
//   reference := name [":" tag] ["@" digest]  |  "sha256:" 64 lower-case hex (an image ID)
//   name      := [domain "/"] path            at most 255 characters
//   domain    := host [":" port]              the first component, when it holds '.' or ':'
//                                             or is "localhost" and more follow
//   host      := [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by "."
//   port      := [0-9]+
//   path      := [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by "/"
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest    := "sha256:" 64 | "sha384:" 96 | "sha512:" 128 lower-case hex digits
//
// As Docker, a bare 64-hex-digit name is refused (it is an ID: sha256:...).
// So no "..", no upper case in the path, no spaces, CR, LF, '?', '#' or '%':
// the reference goes into the Engine API's URLs and into messages.
std::optional<std::string> image_reference_problem(std::string_view reference);

// A name docker.conf may give as `network`: [A-Za-z0-9][A-Za-z0-9_.-]*.
// (Whether it is allowed is apply_host_policy's question.)
bool valid_network_name(std::string_view name);

// "2g" -> 2147483648; nullopt if not a size. Units k, m, g, t (powers of 1024),
// an optional trailing "b", or none (bytes).
std::optional<std::int64_t> parse_size(std::string_view text);
// "90", "90s", "15m", "2h", "1d" -> seconds; nullopt if not a duration.
std::optional<std::int64_t> parse_duration(std::string_view text);

}  // namespace ce::runner
