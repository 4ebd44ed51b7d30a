#include "runner/fleet.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <optional>
#include <stdexcept>
#include <unistd.h>

#include "stages/host_files.h"

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

namespace ce::runner {

namespace {

std::string human_bytes(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  return text;
}

std::string cpus(std::int64_t nano) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", static_cast<double>(nano) / 1e9);
  return text;
}

std::string read_small_at(int dir, const char* name) {
  stages::Fd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return {};
  char buffer[256];
  ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

std::string stage_repository(const FleetSettings& fleet) { return fleet.registry + "/ce-run/stages"; }

std::string stage_tag(const std::string& key) {
  std::string hex = key.substr(key.find(':') == std::string::npos ? 0 : key.find(':') + 1);
  return hex.substr(0, 64);
}

std::string publish_stage_image(docker::Client& client, const FleetSettings& fleet, const std::string& image_id,
                                const std::string& key) {
  std::string repo = stage_repository(fleet), tag = stage_tag(key);
  if (tag.empty()) throw std::runtime_error("the stage image " + image_id + " has no content key to publish it under");
  if (auto digest = client.registry_digest(repo + ":" + tag, fleet.registry_auth)) return repo + "@" + *digest;
  client.tag_image(image_id, repo, tag);
  return repo + "@" + client.push_image(repo, tag, fleet.registry_auth);
}

FleetRun run_on_fleet(docker::Client& client, const FleetSettings& fleet, const FleetCall& call,
                      docker::Cancellation& cancel, const std::function<void(const std::string&)>& note) {
  FleetRun run;
  auto hostname_of = [&](const std::vector<docker::NodeInfo>& nodes, const std::string& id) {
    for (const auto& n : nodes)
      if (n.id == id) return n.hostname.empty() ? id.substr(0, 12) : n.hostname;
    return id.substr(0, 12);
  };
  // A call no node could ever take fails now, not after waiting forever.
  auto nodes = client.list_nodes();
  std::int64_t most_memory = 0, most_cpus = 0;
  for (const auto& n : nodes) {
    if (n.state != "ready" || n.availability != "active") continue;
    most_memory = std::max(most_memory, n.memory_bytes);
    most_cpus = std::max(most_cpus, n.nano_cpus);
  }
  if (call.memory_bytes > most_memory || call.nano_cpus > most_cpus) {
    run.end = FleetRun::End::fits_nowhere;
    run.message = "the call asks for " + human_bytes(call.memory_bytes) + " of memory and " + cpus(call.nano_cpus) +
                  " CPUs (docker.conf), but the largest ready node of the swarm has " + human_bytes(most_memory) +
                  " and " + cpus(most_cpus) + " (" + std::to_string(nodes.size()) +
                  " nodes); lower memory or cpus in docker.conf, or add a node that has them";
    return run;
  }

  // The caller holds the call's lock: a job of this call in the swarm was
  // left by a ce-run that is gone (killed). Its output would be filed by
  // nobody; it goes, and the call runs afresh.
  for (const auto& left : client.list_services({{fleet_label::call, call.call}})) {
    auto by = left.labels.find(fleet_label::submitter);
    note("removing the job " + left.id.substr(0, 12) + " that " +
         (by == left.labels.end() ? std::string("another ce-run") : by->second) +
         " left for this call (it is gone)");
    client.remove_service(left.id);
  }
  std::vector<std::string> avoid;  // nodes an attempt was lost on
  std::string submitter = stages::host_name() + ":" + std::to_string(::getpid());
  for (int attempt = 1; attempt <= fleet.attempts; ++attempt) {
    // Not again on a node it was lost on: while one is left.
    if (attempt > 1) {
      nodes = client.list_nodes();
      bool left = std::any_of(nodes.begin(), nodes.end(), [&](const docker::NodeInfo& n) {
        return n.state == "ready" && n.availability == "active" &&
               std::find(avoid.begin(), avoid.end(), n.id) == avoid.end() && n.memory_bytes >= call.memory_bytes &&
               n.nano_cpus >= call.nano_cpus;
      });
      if (!left) {
        run.message += "no ready node is left that it was not lost on\n";
        break;
      }
    }
    run.attempt = attempt;
    FleetStaging staging = call.staging(attempt);
    stages::write_atomically_at(staging.fd, docker::job::description, docker::job::encode(call.job), 0444,
                                staging.host_path + "/" + docker::job::description);
    docker::JobSpec spec;
    spec.name = "ce-run-" + stages::random_word();
    spec.labels = {{fleet_label::job, "call"},
                   {fleet_label::call, call.call},
                   {fleet_label::computation, call.computation},
                   {fleet_label::submitter, submitter},
                   {fleet_label::attempt, std::to_string(attempt)}};
    spec.image = call.image;
    spec.command = {call.supervisor, "--job", staging.container_path};
    spec.env = call.env;
    spec.user = "0:0";  // the everytime steps; the command becomes its user
    spec.binds = call.binds;
    spec.binds.push_back({staging.host_path, staging.container_path, docker::Access::read_write});
    if (call.network != "none" && call.network != "bridge") spec.network = call.network;
    spec.nano_cpus = spec.reserve_nano_cpus = call.nano_cpus;
    spec.memory_bytes = spec.reserve_memory_bytes = call.memory_bytes;
    spec.pids_limit = call.pids;
    for (const auto& id : avoid) spec.constraints.push_back("node.id!=" + id);
    spec.init = true;
    std::string job = client.create_job(spec, fleet.registry_auth);
    note("submitted as job " + job.substr(0, 12) + (attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : ""));
    bool ended = false;
    auto end_job = [&] {
      if (ended) return;
      ended = true;
      try {
        client.remove_service(job);
      } catch (const std::exception& e) {
        note(std::string("could not end the job ") + job.substr(0, 12) + ": " + e.what());
      }
    };
    std::optional<std::chrono::steady_clock::time_point> started;
    auto nodes_checked = std::chrono::steady_clock::now();
    std::string lost;  // why this attempt was lost
    // Whatever stops the watch (the engine gone, an answer not understood)
    // leaves no job behind.
    struct Ender {
      std::function<void()> end;
      ~Ender() { end(); }
    } ender{end_job};
    for (;;) {
      if (cancel.wait_for(std::chrono::milliseconds(static_cast<long>(fleet.poll_seconds * 1000)))) {
        end_job();
        run.end = FleetRun::End::cancelled;
        return run;
      }
      auto tasks = client.list_tasks(job);
      if (tasks.empty()) continue;
      const auto& t = *std::max_element(tasks.begin(), tasks.end(),
                                        [](const auto& a, const auto& b) { return a.timestamp < b.timestamp; });
      if (!t.node_id.empty() && run.node.empty()) run.node = hostname_of(nodes, t.node_id);
      if (t.state == "running" && !started) {
        started = std::chrono::steady_clock::now();
        note("running on " + run.node);
      }
      if (started && call.timeout_seconds > 0 &&
          std::chrono::steady_clock::now() - *started > std::chrono::duration<double>(call.timeout_seconds)) {
        end_job();
        run.end = FleetRun::End::timed_out;
        return run;
      }
      if (t.state == "complete" || t.state == "failed") {
        // (A shared file system may show the job's last file a moment late.)
        auto end = docker::job::parse_end(read_small_at(staging.fd, docker::job::end_file));
        for (int wait = 0; !end && wait < 20 && !cancel.wait_for(std::chrono::milliseconds(100)); ++wait)
          end = docker::job::parse_end(read_small_at(staging.fd, docker::job::end_file));
        end_job();
        if (end) {
          run.exit_code = end->code;
          run.step = end->step;
          run.end = end->step > 0 ? FleetRun::End::setup_failed : FleetRun::End::ran;
          return run;
        }
        lost = "its container ended (" + t.state + (t.error.empty() ? "" : ": " + t.error) +
               ") before the job had run to its end";
        break;
      }
      if (t.state == "rejected" || t.state == "shutdown" || t.state == "orphaned" || t.state == "remove") {
        lost = t.state + (t.error.empty() ? "" : ": " + t.error);
        if (!t.node_id.empty()) avoid.push_back(t.node_id);
        end_job();
        break;
      }
      // The node of a placed task: Swarm does not move a job off a node
      // that went down (moby/moby#32979), so ce-run does.
      if (!t.node_id.empty() && std::chrono::steady_clock::now() - nodes_checked > std::chrono::milliseconds(500)) {
        nodes = client.list_nodes();
        nodes_checked = std::chrono::steady_clock::now();
        auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.id == t.node_id; });
        if (it == nodes.end() || it->state == "down" || it->state == "disconnected") {
          lost = "its node went down" + (it == nodes.end() || it->message.empty() ? "" : " (" + it->message + ")");
          avoid.push_back(t.node_id);
          end_job();
          break;
        }
      }
    }
    std::string where = run.node.empty() ? "" : " on " + run.node;
    run.message += "attempt " + std::to_string(attempt) + where + ": " + lost + "\n";
    note("attempt " + std::to_string(attempt) + where + " lost: " + lost +
         (attempt < fleet.attempts ? "; running it again elsewhere" : ""));
    run.node.clear();
  }
  run.end = FleetRun::End::fleet_failed;
  return run;
}

}  // namespace ce::runner
