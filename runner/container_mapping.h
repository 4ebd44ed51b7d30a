// The `docker-container` file in COMPDIR: computation(commit) -> container.
//
//   file    = header *entry
//   header  = "ce-run docker-container 1" LF
//             "# computation(commit) -> container; written by ce-run" LF
//   entry   = commit SP tree SP container SP stage-key SP created LF
//   commit  = 40 hex digits, with "-dirty" appended for a dirty work tree
//   tree    = COMPDIR's tree ID (or the work tree's content digest)
//   container = the engine's 64-hex container ID
//   stage-key = the final setup stage's key, or the base image ID
//   created = ISO 8601 UTC time
// Newest entry first; at most `max_entries` are kept. The file is written
// atomically (a temporary file in the same directory, renamed over it).
// Reading is tolerant: a file that is missing, from another version or
// damaged yields no entries and a reason, and the caller rebuilds the
// entries from container labels.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ce::runner {

struct MappingEntry {
  std::string commit;
  std::string tree;
  std::string container;
  std::string stage_key;
  std::string created;
};

struct ContainerMapping {
  static constexpr std::size_t max_entries = 10;
  std::vector<MappingEntry> entries;

  const MappingEntry* find(const std::string& commit) const;
  // Puts the entry first, replacing one for the same commit.
  void put(MappingEntry entry);
};

struct MappingRead {
  ContainerMapping mapping;
  std::string problem;  // empty: read fine (or no file); else why it was not used
};

MappingRead read_mapping(const std::string& path);
MappingRead parse_mapping(const std::string& text);
std::string format_mapping(const ContainerMapping& mapping);
// Throws std::runtime_error naming the path.
void write_mapping(const std::string& path, const ContainerMapping& mapping);

}  // namespace ce::runner
