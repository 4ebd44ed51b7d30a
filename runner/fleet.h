// The fleet: calls run as Swarm jobs across the nodes of a Docker Swarm,
// which places, limits and restarts; ce-run submits, watches and files
// (docs/fleet.md). This part: the names of a fleet job's labels and what
// the swarm says of its nodes and of ce-run's jobs.
#pragma once

#include <string>
#include <vector>

#include "docker/client.h"

namespace ce::runner {

// The labels of a job ce-run submits: the one place of their names.
namespace fleet_label {
inline constexpr const char* job = "ce-run.job";          // "call": a call's job
inline constexpr const char* call = "ce-run.call";        // the call's directory in the GFS: c_NAME/CID12/INS
inline constexpr const char* computation = "ce-run.computation";
inline constexpr const char* submitter = "ce-run.submitter";  // HOST:PID of the ce-run that submitted it
inline constexpr const char* attempt = "ce-run.attempt";      // 1, 2, ...: a call run again elsewhere
}  // namespace fleet_label

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

}  // namespace ce::runner
