// ce-run status | gc | why: what ce-run keeps for a computation, cleaning it
// up, and what changed since the last run.
#include "runner/cli/subcommands.h"

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <spdlog/spdlog.h>

#include "docker/client.h"
#include "runner/compdir.h"
#include "runner/container_mapping.h"
#include "runner/gfs.h"
#include "runner/invoker.h"
#include "runner/docker_conf.h"
#include "runner/fleet.h"
#include "runner/git_identity.h"
#include "runner/cli/run_command.h"
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include "stages/setup_script.h"
#include "stages/build_network.h"
#include "stages/stage_engine.h"
#include "stages/stage_key.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

struct Target {
  CompDir comp;
  Invoker invoker;
  fs::path dir;
  std::string name;
  DockerConf conf;
};

Target load_target(const Command& command) {
  Target t;
  t.invoker = invoking_user();
  t.comp = open_compdir(command.compdir, t.invoker);
  t.dir = t.comp.dir;
  t.conf = t.comp.conf;
  t.name = t.comp.name;
  return t;
}

std::string human_size(std::int64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

std::string label_of(const docker::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

std::string short_id(const std::string& id) {
  auto colon = id.find(':');
  return id.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

// This computation's containers (by label) and its mapping, newest first.
struct Kept {
  ContainerMapping mapping;
  std::vector<docker::ContainerSummary> containers;
  std::vector<docker::ImageSummary> images;  // stage images labelled with its name
};

Kept kept(docker::Client& client, const Target& t) {
  Kept k;
  k.mapping = read_mapping(t.comp).mapping;
  k.containers = client.list_containers(run_container_filter(t.dir.string()));
  std::sort(k.containers.begin(), k.containers.end(), [](const auto& a, const auto& b) { return a.created > b.created; });
  k.images = client.list_images({{stages::label::role, "stage"}, {stages::label::computation, t.name}});
  return k;
}

// key -> parent key, over every stage image the engine has.
std::map<std::string, std::string> stage_parents(docker::Client& client) {
  std::map<std::string, std::string> parents;
  for (const auto& image : client.list_images({{stages::label::role, "stage"}, {stages::label::key, ""}}))
    parents[label_of(image.labels, stages::label::key)] = label_of(image.labels, stages::label::parent);
  return parents;
}

}  // namespace

int run_status(const Command& command) {
  auto t = load_target(command);
  docker::Client client;
  client.check_engine();
  auto k = kept(client, t);
  std::string head;
  try {
    head = identify(t.dir.string()).commit;
  } catch (const std::exception&) {
  }
  std::printf("computation %s in %s%s\n", t.name.c_str(), t.dir.c_str(),
              head.empty() ? "" : (", HEAD " + head.substr(0, 12)).c_str());
  std::printf("containers (one per commit, newest first):\n");
  if (k.containers.empty()) std::printf("  none\n");
  for (const auto& c : k.containers) {
    std::string commit = label_of(c.labels, label::commit);
    bool recorded = k.mapping.find(commit) != nullptr;
    std::printf("  %s  commit %s%s  %-8s  stage key %s  %s%s\n", c.id.substr(0, 12).c_str(),
                commit.substr(0, 12).c_str(), commit.size() > 40 ? " (dirty)" : "", c.state.c_str(),
                label_of(c.labels, label::stage_key).substr(0, 12).c_str(), c.status.c_str(),
                recorded ? "" : "  (not in docker-container)");
  }
  std::printf("stage images:\n");
  std::int64_t total = 0;
  auto images = k.images;
  std::sort(images.begin(), images.end(), [](const auto& a, const auto& b) {
    return std::stoi("0" + label_of(a.labels, stages::label::number)) <
           std::stoi("0" + label_of(b.labels, stages::label::number));
  });
  if (images.empty()) std::printf("  none\n");
  for (const auto& image : images) {
    total += image.size;
    std::string tag = image.repo_tags.empty() ? "<untagged>" : image.repo_tags.front();
    std::printf("  stage %-3s %-28s %s  key %s  lines %-7s %10s\n", label_of(image.labels, stages::label::number).c_str(),
                tag.c_str(), short_id(image.id).c_str(), label_of(image.labels, stages::label::key).substr(0, 12).c_str(),
                label_of(image.labels, stages::label::lines).c_str(), human_size(image.size).c_str());
  }
  std::printf("disk: %zu stage images, %s (layers shared with the base image counted in each)\n", images.size(),
              human_size(total).c_str());
  return 0;
}

namespace {

// Staging directories of calls that no process runs, and of containers
// that are gone (gfs.h): the machine's, whichever computation left them.
void gc_staging(docker::Client& client, bool dry_run) {
  std::vector<std::string> live;
  for (const auto& c : client.list_containers(run_container_filter()))
    if (auto it = c.labels.find(label::staging); it != c.labels.end()) live.push_back(it->second);
  for (const auto& path : collect_staging(staging_root, live, dry_run))
    std::printf("%s staging directory %s\n", dry_run ? "would remove" : "removed", path.c_str());
}

// The fleet's staging directories in the GFS (docs/fleet.md) that no
// submitter holds and no job of the swarm still fills (a killed
// submitter's, which its call's next run adopts).
void gc_fleet_staging(docker::Client& client, const Gfs& gfs, bool dry_run) {
  std::vector<std::string> in_use;
  if (client.swarm_state().control_available)
    for (const auto& job : client.list_services({{fleet_label::job, ""}}))
      if (auto it = job.labels.find(fleet_label::staging); it != job.labels.end()) in_use.push_back(it->second);
  for (const auto& path : collect_staging(fleet_staging_root(gfs.path()), {fleet_staging_key}, dry_run, in_use))
    std::printf("%s fleet staging directory %s\n", dry_run ? "would remove" : "removed", path.c_str());
}

// Results of computation IDs no branch of the repository has, and only
// those this computation's directory computed on this host (the record
// says): another repository may use the same name.
void gc_results(const Gfs& gfs, const Target& t, bool dry_run) {
  std::set<std::string> reachable;
  for (const auto& tree : branch_trees(t.dir.string())) {
    GitIdentity id;
    id.content_tree = tree;
    reachable.insert(computation_id(id).substr(0, 12));
  }
  auto collected = collect_results(gfs, t.name, reachable, t.dir.string(), stages::host_name(), dry_run);
  if (!collected) return;  // no results of this name at all
  const char* verb = dry_run ? "would remove" : "removed";
  for (const auto& c : collected->removed)
    std::printf("%s results of computation %s (no branch has it; %zu calls)\n", verb, c.cid12.c_str(), c.calls);
  std::printf("%s the results of %zu computation IDs; %zu reachable from the branches", verb,
              collected->removed.size(), reachable.size());
  if (collected->left_to_others > 0)
    std::printf("; left %zu computed from other directories or hosts", collected->left_to_others);
  std::printf("\n");
}

}  // namespace

int run_gc(const Command& command) {
  auto t = load_target(command);
  Gfs gfs(resolve_gfs(command));
  gfs.check_allowed(t.invoker, default_gfs, t.comp.host.gfs);
  if (command.gc_results) gc_results(gfs, t, command.dry_run);
  docker::Client client;
  client.check_engine();
  gc_staging(client, command.dry_run);
  gc_fleet_staging(client, gfs, command.dry_run);
  stages::reap_build_containers(client);
  auto k = kept(client, t);
  std::size_t keep = command.gc_keep;

  // The commits to keep: the newest `keep` of the mapping (newest first).
  std::set<std::string> kept_commits;
  for (std::size_t i = 0; i < k.mapping.entries.size() && kept_commits.size() < keep; ++i)
    kept_commits.insert(k.mapping.entries[i].commit);
  std::vector<const docker::ContainerSummary*> remove_containers;
  std::set<std::string> needed_keys;
  auto parents = stage_parents(client);
  for (const auto& c : k.containers) {
    std::string commit = label_of(c.labels, label::commit);
    if (kept_commits.count(commit)) {
      for (std::string key = label_of(c.labels, label::stage_key); !key.empty() && parents.count(key);
           key = parents[key])
        needed_keys.insert(key);
    } else {
      remove_containers.push_back(&c);
    }
  }
  std::vector<const docker::ImageSummary*> remove_images;
  for (const auto& image : k.images)
    if (!needed_keys.count(label_of(image.labels, stages::label::key))) remove_images.push_back(&image);
  // Snapshots (--incremental) that no kept container runs from.
  std::set<std::string> used;
  for (const auto& c : k.containers)
    if (kept_commits.count(label_of(c.labels, label::commit))) used.insert(c.image_id);
  auto snapshots = client.list_images({{stages::label::role, "snapshot"}, {stages::label::computation, t.name}});
  for (const auto& image : snapshots)
    if (!used.count(image.id)) remove_images.push_back(&image);

  const char* verb = command.dry_run ? "would remove" : "removed";
  for (const auto* c : remove_containers) {
    if (!command.dry_run) client.remove_container(c->id, docker::Force::yes);
    std::printf("%s container %s (commit %s)\n", verb, c->id.substr(0, 12).c_str(),
                label_of(c->labels, label::commit).substr(0, 12).c_str());
  }
  // Children before parents: the newest stage first.
  std::sort(remove_images.begin(), remove_images.end(), [](const auto* a, const auto* b) {
    return std::stoi("0" + label_of(a->labels, stages::label::number)) >
           std::stoi("0" + label_of(b->labels, stages::label::number));
  });
  std::int64_t freed = 0;
  for (const auto* image : remove_images) {
    if (!command.dry_run) {
      try {
        client.remove_image(image->id, docker::Force::yes);
      } catch (const docker::EngineError& e) {
        if (e.kind() != docker::ErrorKind::no_such_image) {
          spdlog::warn("warning: could not remove image {}: {}", short_id(image->id), e.what());
          continue;
        }
      }
    }
    freed += image->size;
    std::printf("%s stage image %s (stage %s, key %s)\n", verb, short_id(image->id).c_str(),
                label_of(image->labels, stages::label::number).c_str(),
                label_of(image->labels, stages::label::key).substr(0, 12).c_str());
  }
  if (!command.dry_run && !remove_containers.empty()) {
    ContainerMapping mapping;
    for (const auto& e : k.mapping.entries)
      if (kept_commits.count(e.commit)) mapping.entries.push_back(e);
    write_mapping(t.comp, mapping, t.invoker);
  }
  std::printf("%s %zu containers and %zu stage images (up to %s); kept the %zu most recent commits\n",
              verb, remove_containers.size(), remove_images.size(), human_size(freed).c_str(), kept_commits.size());
  // The machine's idle build network holders (stages/build_network.h).
  if (int n = stages::remove_idle_build_networks(
          client, lock_dir, command.dry_run ? stages::Removal::dry_run : stages::Removal::remove))
    std::printf("%s %d idle build network holders (the next stage build makes one again)\n", verb, n);
  return 0;
}

int run_why(const Command& command) {
  auto t = load_target(command);
  auto id = identify(t.dir.string());
  auto mapping = read_mapping(t.comp).mapping;
  std::string current = mapping_key(id);
  if (mapping.entries.empty()) {
    std::printf("no earlier run of %s is recorded: everything is new\n", t.name.c_str());
    return 0;
  }
  const MappingEntry& before = mapping.entries.front();  // the most recent run
  std::printf("since the run of commit %s:\n", before.commit.substr(0, 12).c_str());
  if (before.commit == current)
    std::printf("  commit: unchanged (%s)\n", current.substr(0, 12).c_str());
  else
    std::printf("  commit: %s -> %s\n", before.commit.substr(0, 12).c_str(), current.substr(0, 12).c_str());
  std::printf("  COMPDIR's tree: %s\n", before.tree == id.content_tree
                                            ? "unchanged: results keyed by the computation ID stay valid"
                                            : ("changed (" + before.tree.substr(0, 12) + " -> " +
                                               id.content_tree.substr(0, 12) + ")")
                                                  .c_str());

  docker::Client client;
  client.check_engine();
  auto parents = stage_parents(client);
  std::vector<std::string> old_keys;  // stage 1 first
  std::string base_before;
  for (std::string key = before.stage_key; !key.empty();) {
    auto it = parents.find(key);
    if (it == parents.end()) {
      base_before = key;  // the base image ID, or a stage image gc removed
      break;
    }
    old_keys.insert(old_keys.begin(), key);
    key = it->second;
  }
  auto script = read_setup_script(t.comp);
  auto base = client.find_image(t.conf.image);
  if (!base) {
    std::printf("  base image %s: not here any more\n", t.conf.image.c_str());
    return 0;
  }
  if (!base_before.empty() && base_before.rfind("sha256:", 0) == 0)
    std::printf("  base image %s: %s\n", t.conf.image.c_str(),
                base_before == base->id ? "unchanged"
                                        : ("changed (" + short_id(base_before) + " -> " + short_id(base->id) +
                                           "): every stage is rebuilt")
                                              .c_str());
  auto keys = stages::stage_keys(script, {base->id, id.content_tree});
  std::size_t k = 0;
  bool reported = false;
  for (const auto& step : script.steps) {
    if (step.kind != stages::StepKind::stage) continue;
    std::string was = k < old_keys.size() ? old_keys[k] : "";
    if (keys[k] != was) {
      std::printf("  stage %d (%s): %s\n", step.stage_number, script.lines_of(step).c_str(),
                  was.empty() ? "new" : "changed, or a stage before it changed: rebuilt with every stage after it");
      reported = true;
      break;
    }
    ++k;
  }
  if (!reported) {
    if (keys.size() < old_keys.size())
      std::printf("  stages: %zu removed at the end; the rest unchanged\n", old_keys.size() - keys.size());
    else
      std::printf("  stages: unchanged (%zu)\n", keys.size());
  }
  return 0;
}

namespace {

// "12 s", "4 min", "3 h" since an engine's RFC 3339 time (UTC); "" when it
// cannot be read.
std::string age_of(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 || !::strptime(rfc3339.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return {};
  long long seconds = static_cast<long long>(std::time(nullptr) - ::timegm(&tm));
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + " s";
  if (seconds < 7200) return std::to_string(seconds / 60) + " min";
  return std::to_string(seconds / 3600) + " h";
}

}  // namespace

int run_fleet_status(const Command& /*command*/) {
  docker::Client client;
  client.check_engine();
  FleetStatus fleet = fleet_status(client);
  std::size_t ready = 0, running = 0;
  for (const auto& n : fleet.nodes) {
    ready += n.node.state == "ready" ? 1 : 0;
    running += n.jobs.size();
  }
  std::printf("swarm: %zu node%s, %zu ready; %zu ce-run call%s running, %zu waiting for a node\n", fleet.nodes.size(),
              fleet.nodes.size() == 1 ? "" : "s", ready, running, running == 1 ? "" : "s", fleet.pending);
  std::printf("%-24s %-8s %-8s %-8s %5s %10s  %s\n", "NODE", "ROLE", "STATE", "AVAIL", "CPUS", "MEMORY", "CALLS");
  for (const auto& n : fleet.nodes) {
    std::string name = n.node.hostname + (n.node.id == fleet.this_node ? " *" : "");
    char cpus[32];
    std::snprintf(cpus, sizeof cpus, "%.4g", static_cast<double>(n.node.nano_cpus) / 1e9);
    std::printf("%-24s %-8s %-8s %-8s %5s %10s  %zu\n", name.c_str(), n.node.role.c_str(), n.node.state.c_str(),
                n.node.availability.c_str(), cpus, human_size(n.node.memory_bytes).c_str(), n.jobs.size());
    for (std::size_t k : n.jobs) {
      const auto& job = fleet.jobs[k];
      std::string age = age_of(job.since);
      std::printf("    %s  %s%s  (job %s, attempt %s)\n", job.call.c_str(), job.state.c_str(),
                  age.empty() ? "" : (" for " + age).c_str(), job.service_id.substr(0, 12).c_str(),
                  job.attempt.empty() ? "1" : job.attempt.c_str());
    }
  }
  if (fleet.pending > 0) {
    std::printf("waiting for a node:\n");
    for (const auto& job : fleet.jobs)
      if (job.node_id.empty() && (job.state == "new" || job.state == "pending" || job.state == "allocated"))
        std::printf("    %s  %s  (job %s)\n", job.call.c_str(),
                    job.error.empty() ? job.state.c_str() : job.error.c_str(), job.service_id.substr(0, 12).c_str());
  }
  return 0;
}

}  // namespace ce::runner
