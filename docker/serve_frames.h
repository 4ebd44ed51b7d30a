// The frames of `ce-run-supervise --serve` (supervise.cc) and its client
// (command_server.h): a 4-byte little-endian length, then the payload, whose
// first byte is the kind and next four the command's id. Header-only: the
// supervisor is a static program of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ce::docker::serve {

inline constexpr char run = 'R';     // ID ARGC {LEN BYTES}...: run a command
inline constexpr char kill = 'K';    // ID: stop it
inline constexpr char out = 'O';     // ID BYTES: its stdout
inline constexpr char err = 'E';     // ID BYTES: its stderr
inline constexpr char ended = 'X';   // ID STATUS: it ended

inline void put32(std::string& to, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) to.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
inline std::uint32_t get32(const std::string& from, std::size_t at) {
  std::uint32_t v = 0;
  for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(from[at + static_cast<std::size_t>(k)]);
  return v;
}

}  // namespace ce::docker::serve
