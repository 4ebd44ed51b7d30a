// The engine's objects as the rest of ce-run sees them: plain structs, no
// Poco types. json_mapping.h converts them to and from the API's JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ce::docker {

using Labels = std::map<std::string, std::string>;

enum class Access { read_write, read_only };

struct Bind {
  std::string host_path;
  std::string container_path;
  Access access = Access::read_write;
};

// What POST /containers/create needs.
struct ContainerSpec {
  std::string name;  // empty: the engine picks one
  std::string image;
  std::vector<std::string> cmd;         // empty: the image's
  std::vector<std::string> entrypoint;  // empty: the image's
  std::vector<std::string> env;         // "KEY=value"
  std::string working_dir;
  std::string user;
  Labels labels;
  std::vector<Bind> binds;
  std::string network_mode;       // empty: the engine's default (bridge)
  std::int64_t nano_cpus = 0;     // 0: unlimited
  std::int64_t memory_bytes = 0;  // 0: unlimited
  std::int64_t pids_limit = 0;    // 0: unlimited
  bool init = false;              // run the engine's init as PID 1
};

struct ContainerState {
  std::string status;  // created, running, paused, restarting, removing, exited, dead
  bool running = false;
  int exit_code = 0;
  std::int64_t pid = 0;
  std::string started_at;
  std::string finished_at;
};

// GET /containers/{id}/json
struct ContainerInfo {
  std::string id;
  std::string name;
  std::string image_id;
  std::string created;
  ContainerState state;
  Labels labels;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
  std::vector<Bind> binds;
  std::string network_mode;
  std::int64_t nano_cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t pids_limit = 0;
  bool init = false;
  // The files the engine makes for the container, on its host.
  std::string hosts_path, resolv_conf_path, hostname_path;
};

// An entry of GET /containers/json
struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;
  std::string image;
  std::string image_id;
  std::string state;
  std::string status;
  std::int64_t created = 0;  // seconds since the epoch
  Labels labels;
};

// GET /images/{name}/json
struct ImageInfo {
  std::string id;  // sha256:...
  std::vector<std::string> repo_tags;
  std::string parent;
  std::string created;
  std::int64_t size = 0;
  Labels labels;
  std::vector<std::string> cmd;
  std::vector<std::string> entrypoint;
  std::vector<std::string> env;
  std::string working_dir;
};

// An entry of GET /images/json
struct ImageSummary {
  std::string id;
  std::vector<std::string> repo_tags;
  std::int64_t created = 0;
  std::int64_t size = 0;
  Labels labels;
};

struct ExecSpec {
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
  bool tty = false;           // a terminal: output comes raw, not in frames
  bool attach_stdin = false;  // for AttachedExec (attach.h)
};

// GET /exec/{id}/json
struct ExecState {
  bool running = false;
  int exit_code = 0;
  std::int64_t pid = 0;  // on the engine's host
  std::string container_id;
};

// POST /commit: the new image's labels and config changes. Unset fields keep
// the container's values.
struct CommitSpec {
  std::string container;
  std::string repo;  // may be empty: an untagged image
  std::string tag;
  std::string comment;
  Labels labels;
  std::optional<std::vector<std::string>> cmd;
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> env;
  std::optional<std::string> working_dir;
  // Freeze the container's processes while committing. Needless when
  // nothing in it can write (container_process_count).
  bool pause = true;
};

// GET /version
struct EngineVersion {
  std::string version;
  std::string api_version;
  std::string min_api_version;
  std::string os;
  std::string arch;
};

// One message of a pull's progress stream.
struct PullProgress {
  std::string id;  // layer id, may be empty
  std::string status;
  std::string progress;
};

// Swarm (docs/fleet.md): the fleet's nodes, the jobs ce-run submits and
// their tasks, as GET /info, /nodes, /services and /tasks describe them.

// "Swarm" of GET /info: this engine's place in a swarm.
struct SwarmState {
  std::string node_id;
  std::string local_node_state;  // inactive, pending, active, error, locked
  bool control_available = false;  // a manager
  std::string node_address;
};

// GET /info: the engine's machine and its swarm.
struct EngineInfo {
  std::string name;  // the host name
  std::string server_version, os, architecture;
  std::int64_t cpus = 0, memory_bytes = 0;
  std::int64_t containers_running = 0;
  SwarmState swarm;
};

// An entry of GET /nodes
struct NodeInfo {
  std::string id;
  std::string hostname;
  std::string role;          // worker, manager
  std::string availability;  // active, pause, drain
  std::string state;         // unknown, down, ready, disconnected
  std::string address;
  std::string message;
  std::int64_t nano_cpus = 0;
  std::int64_t memory_bytes = 0;
  std::string engine_version;
  bool leader = false;
  Labels labels;  // the node's Spec.Labels (set by an operator)
};

// What POST /services/create needs for a job: one task that Swarm never
// restarts (its submitter decides what runs again); json_mapping.h.
struct JobSpec {
  std::string name;
  Labels labels;            // the service's (and its containers')
  std::string image;        // pinned: REPO@sha256:...
  std::vector<std::string> command;  // the container's entrypoint replaced
  std::vector<std::string> env;
  std::string user;
  std::string working_dir;
  std::vector<Bind> binds;
  std::string network;      // empty: none asked for; "host": the node's
  std::int64_t nano_cpus = 0, memory_bytes = 0, pids_limit = 0;  // limits; 0: none
  std::int64_t reserve_nano_cpus = 0, reserve_memory_bytes = 0;   // placed only where these fit
  std::vector<std::string> constraints;  // "node.id!=...", "node.labels.x==y"
  std::vector<std::string> capabilities_add;  // "CAP_SYS_ADMIN", ... beside the engine's defaults
  std::vector<std::string> masked;  // container paths hidden under an empty read-only tmpfs
  bool init = false;
};

// An entry of GET /tasks
struct TaskInfo {
  std::string id;
  std::string service_id;
  std::string node_id;
  std::string state;          // new ... running, complete, failed, rejected, shutdown, orphaned, ...
  std::string desired_state;
  std::string message;
  std::string error;          // Status.Err
  std::optional<int> exit_code;  // Status.ContainerStatus.ExitCode, once it exited
  std::string container_id;
  std::string timestamp;      // of the last state change
};

// An entry of GET /services
struct ServiceSummary {
  std::string id;
  std::string name;
  std::string created_at;
  Labels labels;
};

}  // namespace ce::docker
