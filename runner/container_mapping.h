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

#include "docker/types.h"

namespace ce::docker {
class Client;
}

namespace ce::runner {

struct CompDir;
struct Invoker;
struct GitIdentity;

// The labels of a commit's container (its role is "run"): the one place of
// their names.
namespace label {
inline constexpr const char* role = "ce-run.role";  // "run" on a commit's container
inline constexpr const char* computation = "ce-run.computation";
inline constexpr const char* compdir = "ce-run.compdir";
inline constexpr const char* commit = "ce-run.commit";
inline constexpr const char* tree = "ce-run.tree";
inline constexpr const char* stage_key = "ce-run.stage.key";
inline constexpr const char* settings = "ce-run.settings";  // digest of the container's settings
inline constexpr const char* created = "ce-run.created";
inline constexpr const char* staging = "ce-run.staging";  // its staging directory's key (gfs.h)
inline constexpr const char* snapshot_of = "ce-run.snapshot.of";  // the ancestor commit continued from
}  // namespace label

// The mapping's key of a commit: its 40 hex digits, with "-dirty" appended
// for a dirty work tree (the one place that says so).
std::string mapping_key(const GitIdentity& identity);

// The labels of the run container of `key` (a mapping key) of the
// computation `name` in `compdir`.
docker::Labels run_container_labels(const std::string& name, const std::string& compdir, const std::string& key,
                                    const std::string& tree, const std::string& stage_key,
                                    const std::string& staging_key);
// A filter for run containers: every one, or those of `compdir`.
docker::Labels run_container_filter(const std::string& compdir = "");
// The key of the staging directory of the run container of `key` (gfs.h).
std::string staging_key(const std::string& compdir, const std::string& key);

// True when the labels say the container is the run container of `commit`
// (a mapping key) of the computation in `compdir`: the docker-container file
// is the user's, so what it names is used only if the engine agrees.
bool is_run_container_of(const docker::Labels& labels, const std::string& compdir, const std::string& commit);

// The directories a container mounts from paths a user controls (COMPDIR,
// the GFS) must be the ones ce-run opened and checked: compares each
// mount, as the container's root sees it, with its descriptor (device and
// inode). On a difference the container is removed and this throws.
void check_mounts(docker::Client& client, const std::string& container,
                  const std::vector<std::pair<std::string, int>>& expected);

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
MappingRead read_mapping(const CompDir& compdir);
MappingRead parse_mapping(const std::string& text);
std::string format_mapping(const ContainerMapping& mapping);
// With the invoker's rights; throws std::runtime_error naming the path.
void write_mapping(const CompDir& compdir, const ContainerMapping& mapping, const Invoker& invoker);

}  // namespace ce::runner
