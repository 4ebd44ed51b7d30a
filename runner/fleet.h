// The fleet: calls run as Swarm jobs across the nodes of a Docker Swarm,
// which places and limits; ce-run submits, watches, runs again what the
// fleet lost, and files (docs/fleet.md). Here: a fleet job's labels, what
// the swarm says of its nodes and of ce-run's jobs, a stage image published
// to the fleet's registry, and one call's command run as a job. Nothing
// here prints or files: call.h turns a FleetRun into the call's result.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "docker/cancellation.h"
#include "docker/client.h"
#include "docker/job_file.h"

namespace ce::runner {

// The labels of a job ce-run submits: the one place of their names.
namespace fleet_label {
inline constexpr const char* job = "ce-run.job";          // "call": a call's job
inline constexpr const char* call = "ce-run.call";        // the call in its GFS: GFSDIR/c_NAME/CID12/INS
inline constexpr const char* computation = "ce-run.computation";
inline constexpr const char* submitter = "ce-run.submitter";  // HOST:PID of the ce-run that submitted it
inline constexpr const char* attempt = "ce-run.attempt";      // 1, 2, ...: a call run again elsewhere
inline constexpr const char* staging = "ce-run.staging";      // the attempt's staging directory (its name)
}  // namespace fleet_label

// The fleet's own files in a GFS, root's alone (0700): COMPDIR trees, the
// supervisor, and each attempt's staging directory, in
// GFSDIR/.ce-run/staging/fleet (a gfs.h staging root and container key).
inline constexpr const char* own_dir = ".ce-run";
inline constexpr const char* fleet_staging_key = "fleet";
inline std::string fleet_staging_root(const std::string& gfs) { return gfs + "/" + own_dir + "/staging"; }

struct FleetJob {
  std::string service_id, call, computation, submitter, attempt;
  std::string state;    // the task's: pending, running, complete, failed, rejected, ...
  std::string node_id;  // empty while pending
  std::string error;    // the task's Err: why it waits or failed
  std::string since;    // the task's last state change (RFC 3339)
};

struct FleetNode {
  docker::NodeInfo node;
  std::vector<std::size_t> jobs;  // ce-run's jobs placed on it, not yet ended (in FleetStatus::jobs)
};

struct FleetStatus {
  std::string this_node;         // the node ID of the engine asked
  std::vector<FleetNode> nodes;  // managers first, then by host name
  std::vector<FleetJob> jobs;    // every ce-run job the swarm holds
  std::size_t pending = 0;       // of them, not placed on a node yet
};

// What the swarm of `client`'s engine (a manager) holds. Throws
// std::runtime_error saying what to do when that engine is in no swarm or
// is not a manager.
FleetStatus fleet_status(docker::Client& client);

struct FleetSettings {
  std::string registry;       // HOST[:PORT] of the registry every node pulls from
  std::string registry_auth;  // an X-Registry-Auth value; empty: anonymous
  int attempts = 3;           // runs of a call in all, when the fleet loses it
  double poll_seconds = 0.2;  // how often the job's task is asked (every 0.05 s in its first second)
};

// The X-Registry-Auth value for `registry` (HOST[:PORT]) from the text of a
// Docker client's config.json (`origin` names it in messages): its
// "auths" entry for that registry, keyed as `docker login` writes it
// (HOST:PORT, or with https:// and a path), holding "auth" (base64 of
// USER:PASSWORD), "username" and "password", or "identitytoken". Empty
// when it has none (anonymous). Credential helpers (credsStore,
// credHelpers) are not asked. Throws std::runtime_error "origin: ..." when
// the text is not such a file.
std::string registry_auth_from_config(const std::string& config_json, const std::string& registry,
                                      const std::string& origin);

// The registry's repository of stage images, and a stage image's
// reference in it by content key (the tag; the key's hex digits).
std::string stage_repository(const FleetSettings& fleet);
std::string stage_tag(const std::string& key);

// The stage image `key` names, in the fleet's registry: REPO@DIGEST. Looked
// up there first (a stage is pushed once for the whole fleet); else the
// local image `image_id` is tagged and pushed. Throws docker::EngineError.
std::string publish_stage_image(docker::Client& client, const FleetSettings& fleet, const std::string& image_id,
                                const std::string& key);

// The staging directory of one attempt (gfs.h's StagedCall, on storage
// every node shares): where the job's description goes and the outputs
// come, as the host and the job's container see it.
struct FleetStaging {
  int fd = -1;
  std::string name;  // in the fleet's staging directory
  std::string host_path, container_path;
};

// One call's command as a fleet job.
struct FleetCall {
  std::string call;         // GFSDIR/c_NAME/CID12/INS: its labels and messages
  std::string computation;  // its name
  std::string image;        // REPO@DIGEST (publish_stage_image)
  docker::job::Description job;  // everytime steps as root, then the command
  std::vector<std::string> env;
  std::vector<docker::Bind> binds;  // the GFS, COMPDIR's tree, the supervisor
  std::vector<std::string> masked;  // paths under them the job must not see (GFSDIR/.ce-run)
  std::string supervisor;           // its path in the container
  std::string network;              // docker.conf's; "none": none asked for
  std::int64_t nano_cpus = 0, memory_bytes = 0, pids = 0;  // limits, reserved too
  double timeout_seconds = 0;       // 0: none
  std::vector<std::string> constraints;  // Swarm placement constraints (docker.conf placement)
  // A fresh staging directory for attempt N (from 1), and its name.
  std::function<FleetStaging(int attempt)> staging;
  // The staging directory `name` of attempt N that a submitter now gone
  // made, taken over; nothing when it cannot be (missing, not this call's).
  std::function<std::optional<FleetStaging>(const std::string& name, int attempt)> adopt;
  // Called at each look at the running job of attempt N: its output so far
  // may be passed on.
  std::function<void(int attempt)> progress;
};

struct FleetRun {
  enum class End {
    ran,            // the command ran to its end: exit_code
    setup_failed,   // everytime step `step` exited with exit_code
    timed_out,      // the timeout passed; the job was ended
    cancelled,      // the token; the job was ended
    fits_nowhere,   // no node has what it asks for
    fleet_failed,   // every attempt lost (node down, rejected, ...): message
  } end = End::fleet_failed;
  int exit_code = 0;
  int step = 0;
  int attempt = 0;        // the attempt that ended it (its staging holds the outputs)
  bool adopted = false;   // that attempt's job was a gone submitter's, watched to its end
  std::string node;       // the host name of the node that ran it
  std::string message;    // fits_nowhere and fleet_failed: what happened, each attempt
};

// Runs the call's job (the caller holds the call's lock: a job of the same
// call found in the swarm was left by a ce-run that is gone; it is adopted
// when its staging directory can be, else removed): submits it, watches its task and the nodes, ends
// it (the container stopped on its node) when the token or the timeout
// says so, and submits it again elsewhere when its node is lost or its
// task rejected, up to fleet.attempts in all. `note` hears what happens.
FleetRun run_on_fleet(docker::Client& client, const FleetSettings& fleet, const FleetCall& call,
                      docker::Cancellation& cancel, const std::function<void(const std::string&)>& note);

}  // namespace ce::runner
