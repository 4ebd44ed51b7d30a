#include "runner/fleet.h"

#include <algorithm>
#include <stdexcept>

namespace ce::runner {

namespace {

bool ended(const std::string& state) {
  return state == "complete" || state == "failed" || state == "rejected" || state == "shutdown" ||
         state == "orphaned" || state == "remove";
}

std::string label_of(const docker::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

}  // namespace

FleetStatus fleet_status(docker::Client& client) {
  auto swarm = client.swarm_state();
  if (swarm.local_node_state != "active")
    throw std::runtime_error("the Docker engine at " + client.address().uri() + " is in no swarm (its state: " +
                             (swarm.local_node_state.empty() ? "unknown" : swarm.local_node_state) +
                             "); run ce-run where a Swarm manager's engine answers (DOCKER_HOST), or make one: "
                             "docs/fleet.md");
  if (!swarm.control_available)
    throw std::runtime_error("the Docker engine at " + client.address().uri() +
                             " is a Swarm worker: only a manager knows the fleet; run ce-run on a manager "
                             "(docs/fleet.md)");
  FleetStatus status;
  status.this_node = swarm.node_id;
  for (const auto& service : client.list_services({{fleet_label::job, ""}})) {
    FleetJob job;
    job.service_id = service.id;
    job.call = label_of(service.labels, fleet_label::call);
    job.computation = label_of(service.labels, fleet_label::computation);
    job.submitter = label_of(service.labels, fleet_label::submitter);
    job.attempt = label_of(service.labels, fleet_label::attempt);
    job.state = "new";
    auto tasks = client.list_tasks(service.id);
    // A job has one task (ce-run's jobs are never restarted by Swarm); the
    // latest by its state's time, should there be more.
    auto latest = std::max_element(tasks.begin(), tasks.end(), [](const auto& a, const auto& b) {
      return a.timestamp < b.timestamp;
    });
    if (latest != tasks.end()) {
      job.state = latest->state;
      job.node_id = latest->node_id;
      job.error = latest->error;
      job.since = latest->timestamp;
    }
    if (job.node_id.empty() && !ended(job.state)) ++status.pending;
    status.jobs.push_back(std::move(job));
  }
  for (auto& node : client.list_nodes()) status.nodes.push_back({std::move(node), {}});
  std::sort(status.nodes.begin(), status.nodes.end(), [](const FleetNode& a, const FleetNode& b) {
    if ((a.node.role == "manager") != (b.node.role == "manager")) return a.node.role == "manager";
    return a.node.hostname < b.node.hostname;
  });
  for (std::size_t k = 0; k < status.jobs.size(); ++k) {
    const auto& job = status.jobs[k];
    if (job.node_id.empty() || ended(job.state)) continue;
    for (auto& n : status.nodes)
      if (n.node.id == job.node_id) n.jobs.push_back(k);
  }
  return status;
}

}  // namespace ce::runner
