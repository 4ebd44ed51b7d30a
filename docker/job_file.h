// A fleet job's files (docs/fleet.md), shared by the submitter
// (runner/fleet.h) and `ce-run-supervise --job DIR` in the job's container:
// the call's staging directory DIR holds the job's description, and the
// job leaves its output and its end there, beside the command's outputs.
// Header-only: the supervisor is a static program of its own.
//
// The description is a sequence of records, each a kind byte, a 4-byte
// little-endian length and that many bytes:
//   'S' shell     the shell of the everytime steps: bash, sh, or auto (bash
//                 when the container's PATH has it, else sh)
//   'O' origin    $0 of the steps (the setup script's name)
//   'T' stage     CE_STAGE of the next step
//   'P' program   an everytime step, run as root: shell -c program origin
//   'U' user      the command's user: UID:GID, or a name of /etc/passwd
//   'W' dir       the command's working directory
//   'A' arg       the command's argv, one record each
//   'N' "none"    no network: the steps and the command run in a network
//                 namespace of their own with only loopback (the job's
//                 container has CAP_SYS_ADMIN and CAP_NET_ADMIN for that,
//                 which the supervisor drops before anything runs)
// The end, written last and atomically (rename): "everytime K CODE" when
// step K (from 1) exited with CODE, else "command CODE", CODE as a shell
// gives it (128+N for signal N, 126/127 for a command that cannot run).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "docker/serve_frames.h"

namespace ce::docker::job {

inline constexpr const char* description = ".job";
inline constexpr const char* stdout_file = ".stdout";
inline constexpr const char* stderr_file = ".stderr";
inline constexpr const char* end_file = ".end";

struct Step {
  std::string stage;  // CE_STAGE
  std::string program;
};

struct Description {
  std::string shell = "sh", origin = "docker-setup.sh";
  std::vector<Step> steps;
  std::string user, workdir;
  std::vector<std::string> argv;
  bool no_network = false;
};

inline void put(std::string& to, char kind, const std::string& bytes) {
  to.push_back(kind);
  serve::put32(to, static_cast<std::uint32_t>(bytes.size()));
  to += bytes;
}

inline std::string encode(const Description& d) {
  std::string out;
  put(out, 'S', d.shell);
  put(out, 'O', d.origin);
  for (const auto& s : d.steps) {
    put(out, 'T', s.stage);
    put(out, 'P', s.program);
  }
  put(out, 'U', d.user);
  put(out, 'W', d.workdir);
  for (const auto& a : d.argv) put(out, 'A', a);
  if (d.no_network) put(out, 'N', "none");
  return out;
}

// nullopt when the bytes are not a whole description.
inline std::optional<Description> decode(const std::string& in) {
  Description d;
  std::string stage;
  for (std::size_t at = 0; at < in.size();) {
    if (in.size() - at < 5) return std::nullopt;
    char kind = in[at];
    std::size_t n = serve::get32(in, at + 1);
    if (in.size() - at - 5 < n) return std::nullopt;
    std::string bytes = in.substr(at + 5, n);
    at += 5 + n;
    switch (kind) {
      case 'S': d.shell = bytes; break;
      case 'O': d.origin = bytes; break;
      case 'T': stage = bytes; break;
      case 'P': d.steps.push_back({stage, bytes}); break;
      case 'U': d.user = bytes; break;
      case 'W': d.workdir = bytes; break;
      case 'A': d.argv.push_back(bytes); break;
      case 'N':
        if (bytes != "none") return std::nullopt;
        d.no_network = true;
        break;
      default: return std::nullopt;
    }
  }
  if (d.argv.empty()) return std::nullopt;
  return d;
}

// The end file's text, read back: the step (0 for the command) and the code.
struct End {
  int step = 0;
  int code = 0;
};
inline std::optional<End> parse_end(const std::string& text) {
  End e;
  if (std::sscanf(text.c_str(), "everytime %d %d", &e.step, &e.code) == 2 && e.step > 0) return e;
  if (std::sscanf(text.c_str(), "command %d", &e.code) == 1) {
    e.step = 0;
    return e;
  }
  return std::nullopt;
}

}  // namespace ce::docker::job
