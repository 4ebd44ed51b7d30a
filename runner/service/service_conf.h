// The job service's settings (docs/service.md): root's, TOML, in
// /etc/ce-run/service.conf (or `ce-run serve --conf FILE`), read as host.conf
// is (root's alone, by the same key-table reader); and its tokens, in a file
// that root alone may read, each standing for a user of the machine.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/invoker.h"

namespace ce::runner::service {

inline constexpr const char* default_conf = "/etc/ce-run/service.conf";
inline constexpr const char* default_tokens = "/etc/ce-run/service.tokens";
inline constexpr const char* default_state = "/var/lib/ce-run/service";
inline constexpr const char* default_listen = "127.0.0.1:7070";

// What a commit notification re-runs: a computation or task of the
// repository, at the commit, on these inputs.
struct HookTarget {
  std::string path;  // in the repository ("" for its top)
  std::vector<std::string> inputs;
};

// A repository the service knows by name, for POST /v1/hooks/commit.
struct HookRepository {
  std::string name;
  std::string path;  // its work tree on this host (under a repository root)
  std::string user;  // whose rights its runs have
  std::vector<std::string> refs;  // the refs that trigger (full names); empty: any
  std::vector<HookTarget> targets;
};

struct ServiceConf {
  std::string origin;  // the file read, for messages
  std::string listen = default_listen;
  std::string state = default_state;
  std::string tokens = default_tokens;
  std::string gfs;  // empty: ce-run's default GFS
  // Repositories and inputs a request may name lie under these (the GFS is
  // always an input root).
  std::vector<std::string> repository_roots;
  std::vector<std::string> input_roots;
  std::int64_t max_calls = 0;  // calls at once on the local engine; 0: twice the cores
  std::int64_t max_body_bytes = std::int64_t{64} << 20;
  bool swarm = false;          // every call on the fleet (docs/fleet.md)
  // Reads (GET) without a token; unset: only when listening on loopback.
  std::optional<bool> public_reads;
  std::vector<HookRepository> repositories;
};

// Parses the settings; throws ConfigError "origin:L:C: what; e.g. ...".
ServiceConf parse_service_conf(std::string_view text, const std::string& origin);

// Reads `path` (root's alone, as host.conf; a missing file gives the
// defaults only when `required` is false).
ServiceConf load_service_conf(const std::string& path, bool required);

// "ADDR:PORT" (ADDR an IPv4 address or [IPv6]) split; throws
// std::runtime_error saying what is wrong.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
  bool loopback = false;
};
ListenAddress parse_listen(const std::string& text);

// The tokens: one "USER TOKEN" a line ('#' starts a comment); a token has
// at least 24 characters of [A-Za-z0-9._~+/=-]. Each user must exist and
// must not be root.
struct Tokens {
  std::map<std::string, std::string> user_of;  // SHA-256 of the token (hex): user name
  std::map<std::string, Invoker> users;         // user name: their rights
  // The user a bearer token stands for, or nullopt.
  std::optional<std::string> user(std::string_view token) const;
};
Tokens parse_tokens(std::string_view text, const std::string& origin);
// Reads the file (root's alone, readable by root alone); nullopt when it
// does not exist.
std::optional<Tokens> load_tokens(const std::string& path);

}  // namespace ce::runner::service
