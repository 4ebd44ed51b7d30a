// host.conf: root's own settings for every computation on the machine, TOML,
// in /etc/ce-run/host.conf (or the file CE_RUN_HOST_CONF names). docker.conf
// is the researcher's and hostile; host.conf says how far it may go (limits,
// networks, GFS locations). Keys are one table (host_conf.cc), read by the
// same key-table reader as docker.conf's; docs/docker-conf.md is their
// reference.
//
// The file is trusted only if root alone can change it: a regular file (not a
// symbolic link: opened with O_NOFOLLOW, checked with fstat) owned by root
// and not writable by group or others, in a directory owned by root and not
// writable by group or others (the file is opened relative to that
// directory, so the directory checked is the one read from).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/docker_conf.h"

namespace ce::runner {

inline constexpr const char* default_host_conf = "/etc/ce-run/host.conf";

// The machine's physical memory in bytes (limits::memory_bytes if unknown).
std::int64_t physical_memory_bytes();

struct HostConf {
  std::string origin = default_host_conf;  // the file read (or looked for), for messages
  // Global file storage locations users may choose besides the default
  // (/var/lib/ce-run/gfs); absolute paths, as written. The caller enforces.
  std::vector<std::string> gfs;
  // Networks docker.conf may name besides "none" and "bridge".
  std::vector<std::string> networks;
  std::int64_t memory_bytes = std::int64_t{8} << 30;          // when docker.conf gives no memory
  std::int64_t max_memory_bytes = physical_memory_bytes();     // the most docker.conf may ask for
  std::int64_t pids = 4096;                                    // when docker.conf gives no pids
  std::int64_t max_pids = 32768;                               // the most docker.conf may ask for
  // The fleet (docs/fleet.md): every call runs as a Swarm job (as --swarm),
  // its stage image pushed to `registry` (HOST[:PORT]); a call whose node
  // is lost or whose job is rejected runs again, at most `swarm_attempts`
  // times in all.
  bool swarm = false;
  std::string registry;
  std::int64_t swarm_attempts = 3;
};

// Parses host.conf text; `origin` names the file in messages. Throws
// ConfigError "origin:LINE:COL: what; e.g. ...".
HostConf parse_host_conf(std::string_view text, const std::string& origin);

// Reads `path` if it is there and trusted (see above): a missing file gives
// the defaults when `missing` is MissingHostConf::defaults, an error when it
// is MissingHostConf::error. Throws ConfigError naming the file and the fix.
enum class MissingHostConf { defaults, error };
HostConf load_host_conf(const std::string& path, MissingHostConf missing);

// A file of root's (host.conf, the service's settings and tokens), read
// only if root alone can change it (as above).
struct RootFile {
  std::string kind = "host.conf";  // what messages call it
  std::string example_path = default_host_conf;
  std::string missing_hint;        // after "no such file; create it"
  bool secret = false;             // it must be readable by root alone too
  std::size_t max_bytes = std::size_t{1} << 20;
};
// Its text, or nullopt when it is missing and `missing` allows it. Throws
// ConfigError naming the file and the fix.
std::optional<std::string> read_root_file(const std::string& path, MissingHostConf missing, const RootFile& rules);

// The file CE_RUN_HOST_CONF names (which must then exist: a mistyped name
// must not loosen root's limits to the defaults), else /etc/ce-run/host.conf
// (missing: the defaults).
HostConf load_host_conf();

// docker.conf under root's policy: a memory or pids docker.conf leaves out
// becomes host.conf's default (at most its maximum); one above the maximum,
// or a network other than "none", "bridge" and host.conf's `networks`, is a
// ConfigError at the docker.conf key's line:col (conf.positions).
void apply_host_policy(DockerConf& conf, const HostConf& host);

}  // namespace ce::runner
