#include "runner/fleet.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Parser.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <sstream>
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

std::string registry_auth_from_config(const std::string& config_json, const std::string& registry,
                                      const std::string& origin) {
  auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error(origin + ": " + what + "; fix it (docker login " + registry + " writes it) or remove it");
  };
  Poco::Dynamic::Var parsed;
  try {
    parsed = Poco::JSON::Parser().parse(config_json);
  } catch (const Poco::Exception& e) {
    throw fail("not JSON (" + e.displayText() + ")");
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) throw fail("not a JSON object");
  auto root = parsed.extract<Poco::JSON::Object::Ptr>();
  if (!root->has("auths")) return {};
  auto auths = root->getObject("auths");
  if (!auths) throw fail("\"auths\" is not an object");
  // "https://HOST:PORT/v1/" and "HOST:PORT" name the same registry.
  auto host_of = [](std::string key) {
    for (const char* scheme : {"https://", "http://"})
      if (key.rfind(scheme, 0) == 0) key.erase(0, std::strlen(scheme));
    return key.substr(0, key.find('/'));
  };
  for (const auto& [key, value] : *auths) {
    if (host_of(key) != registry) continue;
    if (value.type() != typeid(Poco::JSON::Object::Ptr)) throw fail("\"auths\".\"" + key + "\" is not an object");
    auto entry = value.extract<Poco::JSON::Object::Ptr>();
    auto text = [&](const char* name) {
      auto v = entry->get(name);
      if (v.isEmpty()) return std::string();
      if (!v.isString()) throw fail("\"auths\".\"" + key + "\"." + name + " is not a string");
      return v.extract<std::string>();
    };
    Poco::JSON::Object auth(Poco::JSON_PRESERVE_KEY_ORDER);
    if (!text("identitytoken").empty()) {
      auth.set("identitytoken", text("identitytoken"));
    } else if (!text("auth").empty()) {
      std::istringstream in(text("auth"));
      Poco::Base64Decoder decoder(in);
      std::string pair;
      try {
        pair.assign(std::istreambuf_iterator<char>(decoder), {});
      } catch (const Poco::Exception&) {
        throw fail("\"auths\".\"" + key + "\".auth is not base64");
      }
      auto colon = pair.find(':');
      if (colon == std::string::npos) throw fail("\"auths\".\"" + key + "\".auth is not base64 of USER:PASSWORD");
      auth.set("username", pair.substr(0, colon));
      auth.set("password", pair.substr(colon + 1));
    } else if (!text("username").empty()) {
      auth.set("username", text("username"));
      auth.set("password", text("password"));
    } else {
      return {};
    }
    auth.set("serveraddress", registry);
    std::ostringstream json, encoded;
    auth.stringify(json);
    Poco::Base64Encoder encoder(encoded, Poco::BASE64_URL_ENCODING);
    encoder.rdbuf()->setLineLength(0);
    encoder << json.str();
    encoder.close();
    return encoded.str();
  }
  return {};
}

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

  // Watches the job of one attempt to its end. The run's end when it has
  // one; else why the attempt was lost (its job removed).
  std::vector<std::string> avoid;  // nodes an attempt was lost on
  auto watch = [&](const std::string& job, const FleetStaging& staging, int attempt) -> std::optional<std::string> {
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
    // Whatever stops the watch (the engine gone, an answer not understood)
    // leaves no job behind.
    struct Ender {
      std::function<void()> end;
      ~Ender() { end(); }
    } ender{end_job};
    std::optional<std::chrono::steady_clock::time_point> started;
    auto nodes_checked = std::chrono::steady_clock::now();
    int looks = 0;
    for (;;) {
      // Often in the job's first second (a short job's end is seen sooner),
      // then every poll_seconds.
      double wait = ++looks <= 20 ? std::min(0.05, fleet.poll_seconds) : fleet.poll_seconds;
      if (cancel.wait_for(std::chrono::milliseconds(static_cast<long>(wait * 1000)))) {
        end_job();
        run.end = FleetRun::End::cancelled;
        return std::nullopt;
      }
      if (call.progress) call.progress(attempt);
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
        return std::nullopt;
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
          return std::nullopt;
        }
        return "its container ended (" + t.state + (t.error.empty() ? "" : ": " + t.error) +
               ") before the job had run to its end";
      }
      // Placement no node matches (docker.conf placement, node labels)
      // is no reason to wait: Swarm would keep the task pending forever.
      if (t.state == "pending" && t.error.find("scheduling constraints not satisfied") != std::string::npos &&
          (avoid.empty() || !call.constraints.empty())) {
        end_job();
        run.end = FleetRun::End::fits_nowhere;
        std::string asked;
        for (const auto& c : call.constraints) asked += (asked.empty() ? "" : ", ") + c;
        run.message = "no node of the swarm matches the call's placement (" + asked + "; docker.conf placement): " +
                      t.error + "; label a node (docker node update --label-add KEY=VALUE NODE) or change placement";
        return std::nullopt;
      }
      if (t.state == "rejected" || t.state == "shutdown" || t.state == "orphaned" || t.state == "remove") {
        if (!t.node_id.empty()) avoid.push_back(t.node_id);
        end_job();
        return t.state + (t.error.empty() ? "" : ": " + t.error);
      }
      // The node of a placed task: Swarm does not move a job off a node
      // that went down (moby/moby#32979), so ce-run does.
      if (!t.node_id.empty() && std::chrono::steady_clock::now() - nodes_checked > std::chrono::milliseconds(500)) {
        nodes = client.list_nodes();
        nodes_checked = std::chrono::steady_clock::now();
        auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.id == t.node_id; });
        if (it == nodes.end() || it->state == "down" || it->state == "disconnected") {
          avoid.push_back(t.node_id);
          end_job();
          return "its node went down" + (it == nodes.end() || it->message.empty() ? "" : " (" + it->message + ")");
        }
      }
    }
  };
  auto lost_attempt = [&](int attempt, const std::string& lost) {
    std::string where = run.node.empty() ? "" : " on " + run.node;
    run.message += "attempt " + std::to_string(attempt) + where + ": " + lost + "\n";
    note("attempt " + std::to_string(attempt) + where + " lost: " + lost +
         (attempt < fleet.attempts ? "; running it again elsewhere" : ""));
    run.node.clear();
  };

  // The caller holds the call's lock: a job of this call in the swarm was
  // left by a ce-run that is gone (killed). Its staging directory taken
  // over, it is watched to its end as if submitted now; else it goes, and
  // the call runs afresh.
  int first = 1;
  for (const auto& left : client.list_services({{fleet_label::call, call.call}})) {
    std::string by = label_of(left.labels, fleet_label::submitter);
    by = by.empty() ? std::string("another ce-run") : by;
    int attempt = std::atoi(label_of(left.labels, fleet_label::attempt).c_str());
    std::optional<FleetStaging> staging;
    if (first == 1 && call.adopt && attempt >= 1 && attempt <= fleet.attempts)
      staging = call.adopt(label_of(left.labels, fleet_label::staging), attempt);
    if (!staging) {
      note("removing the job " + left.id.substr(0, 12) + " that " + by + " left for this call (it is gone)");
      client.remove_service(left.id);
      continue;
    }
    note("adopting the job " + left.id.substr(0, 12) + " that " + by + " left for this call (it is gone)");
    run.attempt = attempt;
    run.adopted = true;
    auto lost = watch(left.id, *staging, attempt);
    if (!lost) return run;
    run.adopted = false;
    lost_attempt(attempt, *lost);
    first = attempt + 1;
  }
  std::string submitter = stages::host_name() + ":" + std::to_string(::getpid());
  for (int attempt = first; attempt <= fleet.attempts; ++attempt) {
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
                   {fleet_label::attempt, std::to_string(attempt)},
                   {fleet_label::staging, staging.name}};
    spec.image = call.image;
    spec.command = {call.supervisor, "--job", staging.container_path};
    spec.env = call.env;
    spec.user = "0:0";  // the everytime steps; the command becomes its user
    spec.binds = call.binds;
    spec.binds.push_back({staging.host_path, staging.container_path, docker::Access::read_write});
    spec.masked = call.masked;
    if (call.network != "none" && call.network != "bridge") spec.network = call.network;
    spec.nano_cpus = spec.reserve_nano_cpus = call.nano_cpus;
    spec.memory_bytes = spec.reserve_memory_bytes = call.memory_bytes;
    spec.pids_limit = call.pids;
    spec.constraints = call.constraints;
    for (const auto& id : avoid) spec.constraints.push_back("node.id!=" + id);
    // Swarm has no "none" network (moby/moby#44403): the supervisor makes
    // one, with capabilities it drops before any step or command runs.
    if (call.job.no_network) spec.capabilities_add = {"CAP_SYS_ADMIN", "CAP_NET_ADMIN"};
    spec.init = true;
    std::string job = client.create_job(spec, fleet.registry_auth);
    note("submitted as job " + job.substr(0, 12) + (attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : ""));
    auto lost = watch(job, staging, attempt);
    if (!lost) return run;
    lost_attempt(attempt, *lost);
  }
  run.end = FleetRun::End::fleet_failed;
  return run;
}

}  // namespace ce::runner
