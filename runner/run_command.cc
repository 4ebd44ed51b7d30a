// How a run goes (docs/cli.md):
//  1. read docker.conf and docker-setup.sh; print lint warnings;
//  2. the commit and COMPDIR's tree through libgit2; refuse a dirty tree
//     unless --allow-dirty;
//  3. plan and apply the setup stages (stages/stage_engine.h);
//  4. under the computation's lock: find the commit's container in the
//     docker-container file (or, when that file is damaged, by labels),
//     reuse it if it was made from the current final stage (starting it if
//     stopped), else make a new one; record it; run the everytime steps;
//  5. release the lock and run the command as the configured user, so runs
//     of the same commit proceed concurrently.
#include "runner/run_command.h"

#include <boost/filesystem.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "docker/client.h"
#include "runner/compdir.h"
#include "runner/container_mapping.h"
#include "runner/docker_conf.h"
#include "runner/exec_watch.h"
#include "runner/gfs.h"
#include "runner/invoker.h"
#include "runner/git_identity.h"
#include "runner/progress.h"
#include "runner/report.h"
#include "runner/supervisor.h"
#include "stages/file_lock.h"
#include "stages/host_files.h"
#include "stages/lint.h"
#include "stages/stage_engine.h"

namespace ce::runner {

namespace fs = boost::filesystem;


namespace {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

void ensure_image(docker::Client& client, const std::string& image) {
  if (client.find_image(image)) return;
  spdlog::info("image {} is not here; pulling it", image);
  client.pull_image(image, [](const docker::PullProgress& p) {
    if (p.progress.empty()) spdlog::debug("pull: {} {}", p.id, p.status);
  });
}

// The computation directory as the user named it, for messages.
std::string shown(const Command& command, const std::string& file) {
  return (fs::path(command.compdir) / file).lexically_normal().string();
}

struct Computation {
  CompDir comp;
  fs::path dir;
  std::string name;
  DockerConf conf;
  stages::SetupScript script;
};

Computation load(const Command& command, const Invoker& invoker) {
  Computation c;
  c.comp = open_compdir(command.compdir, invoker);
  c.dir = c.comp.dir;
  c.name = c.comp.name;
  c.conf = c.comp.conf;
  std::string origin = c.comp.shown_file("docker-setup.sh");
  if (auto text = c.comp.read("docker-setup.sh"))
    c.script = stages::parse_setup_script(*text, origin);
  else
    c.script.origin = origin;
  return c;
}

std::vector<stages::Diagnostic> all_warnings(const stages::SetupScript& script, const DockerConf& conf) {
  auto warnings = script.warnings;
  auto lints = stages::lint(script);
  warnings.insert(warnings.end(), lints.begin(), lints.end());
  if (conf.network == "none") {
    // Everytime steps run in the computation's container, which has no network.
    static const char* const networked[] = {"git fetch", "git clone", "git pull", "apt-get", "apt ", "curl ",
                                            "wget ",     "pip install", "npm install"};
    for (const auto& step : script.steps) {
      if (step.kind != stages::StepKind::everytime) continue;
      for (const char* n : networked) {
        if (step.text.find(n) == std::string::npos) continue;
        warnings.push_back({step.first_line, step.first_column,
                            std::string("this everytime step looks as if it needs the network (") + n +
                                "), but the computation's container has none (docker.conf network = \"none\"); "
                                "move it into a stage, or set network = \"bridge\" in docker.conf"});
        break;
      }
    }
  }
  std::stable_sort(warnings.begin(), warnings.end(),
                   [](const auto& a, const auto& b) { return a.line < b.line; });
  return warnings;
}

std::string format(const stages::SetupScript& script, const stages::Diagnostic& d) {
  return script.origin + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": warning: " + d.message;
}

void print_plan(const Computation& c, const GitIdentity& id, const stages::StagePlan& plan,
                const std::vector<std::string>& argv, const std::string& container) {
  std::printf("computation %s in %s, commit %s, tree %s%s\n", c.name.c_str(), c.dir.c_str(),
              id.commit.substr(0, 12).c_str(), id.content_tree.substr(0, 12).c_str(),
              id.dirty_files.empty() ? "" : " (dirty)");
  std::printf("base image %s (%s)\n", plan.base_image.c_str(), plan.base_image_id.substr(0, 19).c_str());
  for (const auto& p : plan.steps) {
    const auto& s = *p.step;
    std::string what = s.kind == stages::StepKind::stage ? "stage " + std::to_string(s.stage_number)
                                                         : "everytime " + std::to_string(s.index);
    std::string state = s.kind == stages::StepKind::everytime ? "would run" : p.cached ? "cached" : "would build";
    std::printf("  %-13s %-40s %-16s %s\n", what.c_str(), c.script.lines_of(s).c_str(),
                p.key.empty() ? "" : ("key " + p.key.substr(0, 12)).c_str(), state.c_str());
  }
  std::printf("container: %s\n", container.c_str());
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  std::printf("then run: %s\n", command.empty() ? "nothing: there is no command (below)" : command.c_str());
}

// The user the command runs as: docker.conf's, else whoever invoked ce-run
// (through sudo: SUDO_UID/SUDO_GID), so that GFS files belong to them.
std::string command_user(const DockerConf& conf) {
  if (!conf.user.empty()) return conf.user;
  const char* uid = std::getenv("SUDO_UID");
  const char* gid = std::getenv("SUDO_GID");
  if (uid && *uid && gid && *gid) return std::string(uid) + ":" + gid;
  return std::to_string(::getuid()) + ":" + std::to_string(::getgid());
}

// docker-container and its temporary files must never show in `git status`.
// The repository is the user's: written with their rights.
void exclude_from_git_as_user(const GitIdentity& id) {
  fs::path git = fs::path(id.workdir) / ".git";
  fs::path info;
  if (fs::is_directory(git)) {
    info = git / "info";
  } else if (fs::is_regular_file(git)) {
    // a submodule or linked worktree: ".git" names the real directory
    std::ifstream in(git.string());
    std::string line;
    std::getline(in, line);
    if (line.rfind("gitdir: ", 0) != 0) return;
    fs::path dir = line.substr(8);
    if (dir.is_relative()) dir = fs::path(id.workdir) / dir;
    if (fs::is_regular_file(dir / "commondir")) {
      std::ifstream common((dir / "commondir").string());
      std::string c;
      std::getline(common, c);
      dir = fs::path(c).is_relative() ? dir / c : fs::path(c);
    }
    info = dir / "info";
  } else {
    return;
  }
  fs::path exclude = info / "exclude";
  std::string text;
  if (std::ifstream in(exclude.string()); in) {
    std::ostringstream all;
    all << in.rdbuf();
    text = all.str();
  }
  if (text.find("\n/**/docker-container*\n") != std::string::npos || text.rfind("/**/docker-container*\n", 0) == 0)
    return;
  boost::system::error_code ec;
  fs::create_directories(info, ec);
  std::ofstream out(exclude.string(), std::ios::app);
  if (!text.empty() && text.back() != '\n') out << "\n";
  out << "# ce-run's mapping of commits to containers\n/**/docker-container*\n";
}

void exclude_from_git(const GitIdentity& id, const Invoker& invoker) {
  as_invoker(invoker, [&] {
    exclude_from_git_as_user(id);
    return -1;
  });
}

// Everything the container is made with: a container made otherwise is
// replaced.
// (The image is not part of it: the stage key label says which stages the
// container holds, and a container continued from a snapshot has another.)
std::string settings_digest(const docker::ContainerSpec& spec, const SupervisorBinary& supervisor) {
  std::string text = supervisor.identity + "\n" + spec.network_mode + "\n" + std::to_string(spec.nano_cpus) + "\n" +
                     std::to_string(spec.memory_bytes) + "\n" + std::to_string(spec.pids_limit) + "\n";
  for (const auto& e : spec.env) text += e + "\n";
  for (const auto& b : spec.binds)
    text += b.host_path + ":" + b.container_path + (b.access == docker::Access::read_only ? ":ro" : ":rw") + "\n";
  return stages::sha256_hex(text).substr(0, 16);
}

// Finds or makes the commit's container, records it, makes sure it runs.
// With --incremental: a snapshot of the newest ancestor commit's container
// made from the same stages, to start the new commit's container from.
std::string ancestor_snapshot(docker::Client& client, const Computation& c, const GitIdentity& id,
                              const ContainerMapping& mapping, const std::string& stage_key) {
  if (!id.dirty_files.empty()) return {};
  for (const auto& e : mapping.entries) {
    if (e.commit.size() != 40 || e.commit == id.commit || e.stage_key != stage_key) continue;
    if (!is_ancestor(c.dir.string(), e.commit, id.commit)) continue;
    auto info = client.find_container(e.container);
    // Only this computation's own container of that commit: the file is the
    // user's, and a container of somebody else's must not be copied.
    if (!info || !is_run_container_of(info->labels, c.dir.string(), e.commit) ||
        info->labels[label::stage_key] != stage_key)
      continue;
    docker::CommitSpec commit;
    commit.container = info->id;
    commit.repo = stages::stage_repository(c.name);
    commit.tag = "snapshot-" + e.commit.substr(0, 12);
    commit.comment = "ce-run: snapshot of the container of commit " + e.commit;
    commit.labels = {{stages::label::role, "snapshot"}, {label::snapshot_of, e.commit},
                     {stages::label::computation, c.name}, {stages::label::key, ""}};
    auto image = client.commit(commit);
    spdlog::info("continuing from a snapshot of the container of ancestor commit {}", e.commit.substr(0, 12));
    return image;
  }
  return {};
}

std::string commit_container(docker::Client& client, const Computation& c, const GitIdentity& id,
                             const std::string& mapping_key, docker::ContainerSpec spec,
                             const SupervisorBinary& supervisor, bool incremental, const Invoker& invoker,
                             const std::vector<std::pair<std::string, int>>& mounts, bool& created) {
  created = false;
  auto read = read_mapping(c.comp);
  ContainerMapping mapping = read.mapping;
  std::string path = c.comp.shown_file("docker-container");
  if (!read.problem.empty()) {
    spdlog::warn("warning: {}: {}; rebuilding it from the containers' labels", path, read.problem);
    mapping = {};
    auto found = client.list_containers({{label::role, "run"}, {label::compdir, c.dir.string()}});
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.created < b.created; });
    for (const auto& f : found) {
      auto at = [&](const char* k) {
        auto it = f.labels.find(k);
        return it == f.labels.end() ? std::string("-") : it->second;
      };
      mapping.put({at(label::commit), at(label::tree), f.id, at(label::stage_key), at(label::created)});
    }
  }
  std::string settings = settings_digest(spec, supervisor);
  std::string container;
  if (const MappingEntry* entry = mapping.find(mapping_key)) {
    auto info = client.find_container(entry->container);
    if (info && !is_run_container_of(info->labels, c.dir.string(), mapping_key)) {
      // The file is the user's to write: what it names is not trusted.
      spdlog::warn("warning: {} names the container {}, which is not this computation's container of commit {}; "
                   "leaving it alone and making one",
                   path, entry->container.substr(0, 12), id.commit.substr(0, 12));
      info.reset();
    } else if (!info) {
      spdlog::info("the container {} of commit {} is gone; making a new one", entry->container.substr(0, 12),
                   id.commit.substr(0, 12));
    }
    if (!info) {
    } else if (info->labels[label::stage_key] != spec.labels[label::stage_key] ||
               info->labels[label::settings] != settings) {
      spdlog::info("the container {} of commit {} was made from other stages or settings; replacing it",
                   entry->container.substr(0, 12), id.commit.substr(0, 12));
      client.remove_container(info->id, docker::Force::yes);
    } else {
      container = info->id;
      if (!info->state.running) {
        spdlog::info("starting the stopped container {} of commit {}", container.substr(0, 12),
                     id.commit.substr(0, 12));
        client.start_container(container);
      } else {
        spdlog::debug("reusing container {}", container.substr(0, 12));
      }
    }
  }
  if (container.empty()) {
    if (incremental) {
      auto snapshot = ancestor_snapshot(client, c, id, mapping, spec.labels[label::stage_key]);
      if (!snapshot.empty()) spec.image = snapshot;  // its label names the ancestor commit
    }
    spec.labels[label::settings] = settings;
    spec.labels[label::created] = utc_now();
    container = client.create_container(spec);
    try {
      client.start_container(container);
    } catch (...) {
      client.remove_container(container, docker::Force::yes);
      throw;
    }
    spdlog::info("made container {} for commit {}", container.substr(0, 12), id.commit.substr(0, 12));
    created = true;
  }
  check_mounts(client, container, mounts);
  mapping.put({mapping_key, id.content_tree, container, spec.labels[label::stage_key], utc_now()});
  write_mapping(c.comp, mapping, invoker);
  return container;
}

// The machine's lock directory, root's alone.
stages::Fd private_lock_dir() {
  fs::create_directories(lock_dir);
  stages::Fd fd = stages::open_directory(lock_dir, ::geteuid());
  ::fchmod(fd.get(), 0700);
  return fd;
}

int exit_for_signal(int sig) { return sig == SIGTERM ? 143 : exit_code::interrupted; }

}  // namespace

std::string resolve_gfs(const Command& command) {
  std::string dir = command.gfs;
  if (dir.empty()) {
    const char* env = std::getenv("GFSDIR");
    if (env && *env) dir = env;
  }
  if (dir.empty()) {
    dir = default_gfs;
    if (!fs::exists(dir)) {
      spdlog::info("using the default global file storage {} (set GFSDIR or --gfs to choose another)", dir);
      fs::create_directories(dir);
    }
  }
  if (!fs::is_directory(dir))
    throw std::runtime_error("the global file storage " + dir + " is not a directory; create it, or point --gfs "
                             "or GFSDIR at one");
  return fs::canonical(dir).string();
}

int run_lint(const Command& command) {
  auto c = load(command, invoking_user());
  auto warnings = all_warnings(c.script, c.conf);
  for (const auto& w : warnings) std::cout << format(c.script, w) << "\n";
  if (warnings.empty()) std::cout << c.script.origin << ": no warnings\n";
  return warnings.empty() ? 0 : 1;
}

namespace {

// Before anything else: an engine socket we may not use is the user's first
// problem. (Only a local check: a call that is done needs no engine at all.)
void check_socket_access() {
  auto address = docker::EngineAddress::from_environment();
  if (address.kind != docker::EngineAddress::Kind::unix_socket) return;
  if (::access(address.path.c_str(), F_OK) == 0 && ::access(address.path.c_str(), R_OK | W_OK) != 0)
    throw std::runtime_error("permission denied on the Docker engine socket " + address.uri() +
                             ": ce-run must run as root or as a member of the docker group");
}

void print_outputs(const Call& call, const CallContract& contract, const char* status, Report& report) {
  for (std::size_t k = 0; k < contract.outputs.size(); ++k) {
    std::printf("%s %s\n", call.output_path(k).c_str(), status);
    report.outputs.push_back({contract.outputs[k], call.output_path(k), status});
  }
  std::fflush(stdout);
}

// Times the run's phases into the report: each end() closes the phase
// that began at the previous one.
class PhaseClock {
 public:
  explicit PhaseClock(Report& report) : report_(report) {}
  void end(const char* phase) {
    auto now = std::chrono::steady_clock::now();
    report_.phases.emplace_back(phase, std::chrono::duration<double>(now - start_).count());
    start_ = now;
  }

 private:
  Report& report_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

int run_inner(const Command& command, Report& report) {
  PhaseClock clock(report);
  check_socket_access();
  Invoker invoker = invoking_user();
  auto c = load(command, invoker);
  report.name = c.name;
  report.dir = c.dir.string();
  report.base_image = c.conf.image;

  // A CompEval computation (it has an `outputs` file) run without -- COMMAND
  // is a call whose results live in the GFS.
  std::optional<CallContract> contract;
  if (command.command.empty()) contract = read_contract(c.comp.fd->get(), c.dir.string(), command.compdir);

  std::vector<std::string> argv = command.command;
  // Without a command to run, a dry run still shows the plan, then says so.
  std::string no_command;
  int no_command_code = 0;
  if (argv.empty()) {
    fs::path exec = contract ? fs::path(contract->exec) : c.dir / "exec";
    std::string kind = c.comp.kind(exec.filename().string());
    if (kind.empty()) {
      no_command = shown(command, "exec") + ": no exec file; add one, or give a command after --";
      no_command_code = exit_code::not_found;
    } else if (kind == "link") {
      no_command = shown(command, exec.filename().string()) +
                   " is a symbolic link; ce-run runs only a regular file of the repository as exec: commit the "
                   "program itself, or a script that calls it";
      no_command_code = exit_code::not_executable;
    } else if (kind != "executable") {
      no_command = shown(command, exec.filename().string()) + ": not executable; chmod +x it";
      no_command_code = exit_code::not_executable;
    } else {
      argv.push_back(exec.string());
      if (!contract) argv.insert(argv.end(), command.inputs.begin(), command.inputs.end());
    }
  }
  auto report_no_command = [&] {
    spdlog::error("error: {}", no_command);
    return no_command_code;
  };
  if (!no_command.empty() && !command.dry_run) return report_no_command();

  clock.end(phase::load);
  auto identity = identify(c.dir.string());
  clock.end(phase::identity);
  if (!identity.dirty_files.empty() && !command.allow_dirty) {
    std::string files;
    for (std::size_t i = 0; i < identity.dirty_files.size() && i < 20; ++i) files += "\n  " + identity.dirty_files[i];
    if (identity.dirty_files.size() > 20)
      files += "\n  ... and " + std::to_string(identity.dirty_files.size() - 20) + " more";
    throw std::runtime_error(command.compdir + " has uncommitted changes:" + files +
                             "\ncommit them, or run with --allow-dirty (results are then marked dirty)");
  }
  std::string mapping_key = identity.commit + (identity.dirty_files.empty() ? "" : "-dirty");
  report.commit = identity.commit;
  report.tree = identity.content_tree;
  report.id = computation_id(identity);
  report.dirty = !identity.dirty_files.empty();
  Gfs store(resolve_gfs(command));
  store.check_allowed(invoker, default_gfs, c.comp.host.gfs);
  const std::string& gfs = store.path();

  std::optional<Call> call;
  if (contract) {
    call.emplace(store, c.name, report.id, *contract, command.inputs, invoker);
    for (const auto& f : call->inputs()) report.inputs.push_back({f.name, f.path, f.sha1});
    if (command.verify) {
      auto problems = call->verify();
      for (const auto& p : problems) std::printf("%s\n", p.c_str());
      if (problems.empty()) {
        print_outputs(*call, *contract, "verified", report);
        return 0;
      }
      // A corrupt result must not count as done: withdraw its record.
      if (auto aside = call->withdraw_record(); !aside.empty())
        spdlog::warn("warning: the call's record is withdrawn to {}; the next call computes it again", aside);
      return 1;
    }
    bool done = call->done().has_value();
    clock.end(phase::inputs);
    if (done) {
      // The no-change path: no engine, no container.
      print_outputs(*call, *contract, "ok", report);
      return 0;
    }
    if (command.dry_run) {
      print_outputs(*call, *contract, "MISSING", report);
      return no_command.empty() ? 0 : report_no_command();
    }
  }
  for (const auto& w : all_warnings(c.script, c.conf)) spdlog::warn("{}", format(c.script, w));

  docker::Client client;
  auto engine = client.check_engine();
  spdlog::debug("engine {} (API {}) at {}", engine.version, engine.api_version, client.address().uri());

  ensure_image(client, c.conf.image);
  auto base = client.inspect_image(c.conf.image);
  auto plan = stages::plan_stages(client, c.script, c.conf.image, {base.id, identity.content_tree});
  report.base_image_id = base.id;
  report.final_key = plan.final_key.empty() ? base.id : plan.final_key;
  for (const auto& p : plan.steps) {
    bool stage = p.step->kind == stages::StepKind::stage;
    report.steps.push_back({p.step->index, stage ? "stage" : "everytime", p.step->first_line, p.step->last_line,
                            p.key, p.cached ? "cached" : "planned", 0});
  }
  if (command.dry_run) {
    clock.end(phase::setup);
    auto mapping = read_mapping(c.comp).mapping;
    const MappingEntry* entry = mapping.find(mapping_key);
    std::string container = entry && client.find_container(entry->container)
                                ? "would reuse " + entry->container.substr(0, 12) + " if made from these stages"
                                : "would make one for commit " + identity.commit.substr(0, 12);
    print_plan(c, identity, plan, argv, container);
    return no_command.empty() ? 0 : report_no_command();
  }

  std::vector<std::string> env = {"COMPDIR=" + c.dir.string(), "GFSDIR=" + gfs, "CE_COMMIT=" + identity.commit};
  TerminalProgress progress(c.script, command.verbosity, &report);
  stages::ApplyOptions options;
  options.computation = c.name;
  options.compdir = c.dir.string();
  options.env = env;
  options.lock_dir = lock_dir;
  options.keep = command.keep_build_container ? stages::KeepBuildContainer::on_failure : stages::KeepBuildContainer::no;
  options.memory_bytes = c.conf.memory_bytes;
  options.pids = c.conf.pids;
  options.check_container = [&](const std::string& id) { check_mounts(client, id, {{c.dir.string(), c.comp.fd->get()}}); };
  stages::Fd locks = private_lock_dir();
  auto applied = stages::apply_stages(client, c.script, plan, options, progress);
  std::string final_key = applied.final_key.empty() ? base.id : applied.final_key;
  clock.end(phase::setup);

  for (const auto& [k, v] : c.conf.env) env.push_back(k + "=" + v);
  auto supervisor = supervisor_on_host();
  docker::ContainerSpec spec;
  spec.image = applied.image_id;
  spec.entrypoint = {"sleep"};
  spec.cmd = {"2147483647"};
  spec.init = true;
  spec.env = env;
  // The GFS is read-only in the container: only ce-run writes there. A
  // command writes its outputs into the container's staging directory,
  // which only root on the host can reach (gfs.h, docs/security.md).
  std::string staging_key = stages::sha256_hex(c.dir.string() + "\n" + mapping_key).substr(0, 24);
  spec.binds = {{gfs, gfs, docker::Access::read_only},
                {c.dir.string(), c.dir.string(), docker::Access::read_only},
                {container_staging_dir(staging_root, staging_key), staging_in_container, docker::Access::read_write},
                {supervisor.path, supervisor_in_container, docker::Access::read_only}};
  spec.network_mode = c.conf.network;
  spec.nano_cpus = c.conf.nano_cpus;
  spec.memory_bytes = c.conf.memory_bytes;
  spec.pids_limit = c.conf.pids;
  spec.labels = {{label::role, "run"},           {label::computation, c.name},
                 {label::compdir, c.dir.string()}, {label::commit, mapping_key},
                 {label::tree, identity.content_tree}, {label::stage_key, final_key},
                 {label::staging, staging_key}};

  ExecWatch watch(c.conf.timeout_seconds);
  stages::Supervision supervision{supervisor_in_container, &watch.cancellation()};
  // Waiting for a lock ends with a signal, and ce-run exits then.
  auto take_lock = [&](int dir, const std::string& name, const std::string& shown, const char* holder,
                       spdlog::level::level_enum level) -> std::unique_ptr<stages::FileLock> {
    try {
      auto free = std::make_unique<stages::FileLock>(dir, name, shown, stages::Wait::no);
      if (free->held()) return free;
      spdlog::log(level, "waiting for {} to finish (Ctrl-C stops waiting)", holder);
      return std::make_unique<stages::FileLock>(dir, name, shown, stages::Wait::yes, &watch.cancellation());
    } catch (const docker::Cancelled&) {
      return nullptr;
    }
  };
  std::string container;
  {
    // Setup of the commit's container and its everytime steps: one at a time.
    std::string lock_name = "compdir-" + stages::sha256_hex(c.dir.string()).substr(0, 24) + ".lock";
    auto lock = take_lock(locks.get(), lock_name, std::string(lock_dir) + "/" + lock_name,
                          "another ce-run setting up this computation's container", spdlog::level::debug);
    if (!lock) return exit_for_signal(watch.signal());
    exclude_from_git(identity, invoker);
    bool created = false;
    container = commit_container(client, c, identity, mapping_key, spec, supervisor, command.incremental, invoker,
                                 {{gfs, store.fd()}, {c.dir.string(), c.comp.fd->get()}}, created);
    report.container_id = container;
    report.container_created = created;
    clock.end(phase::container);
    bool has_everytime = false;
    for (const auto& s : c.script.steps) has_everytime |= s.kind == stages::StepKind::everytime;
    if (has_everytime) {
      // A ce-run killed during its everytime steps: its supervisor is
      // stopping the step it left; run them again once it has.
      if (await_leftover_exec(client, lock->previous_note(), container))
        spdlog::warn("warning: waited for an everytime step of an interrupted ce-run to stop in the container {}",
                     container.substr(0, 12));
      auto shell = stages::detect_shell(client, container, applied.image_id, c.conf.image, progress);
      struct WatchedProgress : TerminalProgress {
        WatchedProgress(const stages::SetupScript& s, Verbosity v, Report* r, stages::FileLock& l,
                        const std::string& c)
            : TerminalProgress(s, v, r), lock(l), container(c) {}
        void exec_created(const std::string& id) override { lock.set_note(exec_note(container, id)); }
        stages::FileLock& lock;
        const std::string& container;
      } watched(c.script, command.verbosity, &report, *lock, container);
      for (const auto& step : c.script.steps) {
        if (step.kind != stages::StepKind::everytime) continue;
        if (watch.signal()) return exit_for_signal(watch.signal());
        watched.step_started(step, stages::StepStatus::ran);
        auto start = std::chrono::steady_clock::now();
        std::string tail;
        int code = stages::run_step(client, container, c.script, step, shell, env, watched, &tail, &supervision);
        if (watch.signal()) return exit_for_signal(watch.signal());
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (code != 0) {
          watched.step_finished(step, stages::StepStatus::failed, seconds);
          std::string hint = c.conf.network == "none"
                                 ? "\nthe computation's container has no network (docker.conf network = \"none\"); "
                                   "if the step needs it, move it into a stage or set network = \"bridge\""
                                 : "";
          throw stages::StepFailed(describe_step(c.script, step) + " failed with exit code " +
                                       std::to_string(code) +
                                       (tail.empty() ? " and printed nothing" : "; its last lines:\n" + tail) +
                                       "fix it and run again" + hint,
                                   code, {});
        }
        watched.step_finished(step, stages::StepStatus::ran, seconds);
      }
      clock.end(phase::everytime);
    }
  }
  if (watch.signal()) return exit_for_signal(watch.signal());

  // The command: concurrent with other runs of the same commit; identical
  // calls (same computation ID and inputs) one at a time, so they compute once.
  std::unique_ptr<stages::FileLock> call_lock;
  std::optional<StagedCall> staged;
  std::string user = command_user(c.conf);
  auto start_time = utc_now();
  auto started = std::chrono::steady_clock::now();
  if (call) {
    stages::Fd call_locks = call->lock_dir();
    call_lock = take_lock(call_locks.get(), call->inputs_key(),
                          (fs::path(call->record_path()).parent_path().parent_path() / ".locks" / call->inputs_key())
                              .string(),
                          "another ce-run computing the same call", spdlog::level::info);
    if (!call_lock) return exit_for_signal(watch.signal());
    if (call->done()) {  // another ce-run computed it while we waited
      print_outputs(*call, *contract, "ok", report);
      return 0;
    }
    // A ce-run of this call killed during its command: its supervisor is
    // stopping the command, which must not go on writing beside ours.
    if (await_leftover_exec(client, call_lock->previous_note(), container))
      spdlog::warn("warning: waited for the command of an interrupted ce-run of this call to stop");
    call->store_inputs();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    staged.emplace(staging_root, staging_key, call->inputs_key() + "." + host + "." + std::to_string(::getpid()),
                   user);
    for (const auto& f : call->inputs()) argv.push_back(f.stored);
    for (std::size_t k = 0; k < contract->outputs.size(); ++k) {
      char number[24];
      std::snprintf(number, sizeof number, "%02zu", k);
      argv.push_back(staged->container_path() + "/" + number);
    }
  }
  docker::ExecSpec exec;
  exec.cmd = argv;
  exec.env = env;
  exec.working_dir = c.conf.workdir.empty() ? c.dir.string() : c.conf.workdir;
  exec.user = user;
  auto kept = [&](const std::string& why) {
    if (call) {
      spdlog::error("error: {}; nothing was filed in the GFS; the outputs so far are kept for inspection in the "
                    "container at {} (ce-run shell {} shows them; ce-run gc removes them)",
                    why, staged->container_path(), command.compdir);
      print_outputs(*call, *contract, "MISSING", report);
    }
  };
  int code = 0;
  try {
    code = client.run_supervised_exec(
        container, exec, supervisor_in_container,
        [&](docker::StreamKind kind, std::string_view bytes) {
          if (watch.output_lost()) return;
          auto* out = kind == docker::StreamKind::stderr_stream ? stderr : stdout;
          // A reader that went away (`ce-run ... | head -1`) stops the run,
          // as SIGPIPE would stop a program that wrote there.
          if ((std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size() || std::fflush(out) != 0) &&
              errno == EPIPE)
            watch.output_closed();
        },
        [&](const std::string& id) {
          if (call_lock) call_lock->set_note(exec_note(container, id));
          watch.arm_timeout();
        },
        &watch.cancellation());
  } catch (const docker::EngineError& e) {
    // The engine died under the command (or was restarted, and has
    // forgotten the exec): its result is unknown.
    if (e.kind() != docker::ErrorKind::unreachable && e.kind() != docker::ErrorKind::no_such_exec &&
        e.kind() != docker::ErrorKind::no_such_container)
      throw;
    if (call) print_outputs(*call, *contract, "MISSING", report);
    throw std::runtime_error("the Docker engine at " + client.address().uri() +
                             " went away while the command ran, so its result is unknown" +
                             (call ? "; nothing was filed in the GFS" : "") +
                             "; start the engine (scripts/start-docker) and run again");
  }
  watch.disarm_timeout();
  clock.end(phase::command);
  if (watch.timed_out()) {
    spdlog::error("error: the command ran longer than docker.conf's timeout ({} s) and was stopped",
                  c.conf.timeout_seconds);
    kept("the command timed out");
    return exit_code::timed_out;
  }
  if (watch.signal()) {
    kept("ce-run was interrupted");
    return exit_for_signal(watch.signal());
  }
  if (watch.output_lost()) {
    spdlog::error("error: ce-run's standard output was closed, so the command was stopped");
    kept("the command was stopped");
    return exit_code::output_closed;
  }
  if (call) {
    if (full_file_system(staged->host_path())) {
      // Outputs written to a full file system may be cut short, and keeping
      // them would keep it full: remove them.
      try {
        staged->remove();
      } catch (const std::exception& e) {
        spdlog::warn("warning: {}", e.what());
      }
      print_outputs(*call, *contract, "MISSING", report);
      throw std::runtime_error("the file system of the staging area (" + std::string(staging_root) +
                               ") was full when the command ended (" +
                               argv.front() + " exited with " + std::to_string(code) +
                               "): its outputs may be cut short, so nothing was filed and they were removed; "
                               "free space there and run again");
    }
    if (code != 0) {
      kept(argv.front() + " exited with " + std::to_string(code));
      return code;
    }
    CallRecord record;
    record.exit_code = code;
    record.start = start_time;
    record.end = utc_now();
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    record.computation_id = report.id;
    record.commit = identity.commit;
    record.tree = identity.content_tree;
    record.dirty = report.dirty;
    record.base_image_id = base.id;
    record.final_key = final_key;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    record.host = host;
    record.compdir = c.dir.string();
    try {
      call->promote(*staged, record);
    } catch (const std::exception& e) {
      kept(e.what());
      return exit_code::runner_error;
    }
    try {
      staged->remove();
    } catch (const std::exception& e) {
      spdlog::warn("warning: {}; ce-run gc removes it", e.what());
    }
    clock.end(phase::filing);
    print_outputs(*call, *contract, "computed", report);
  }
  return code;
}

}  // namespace

int run_computation(const Command& command) {
  Report report;
  auto start = std::chrono::steady_clock::now();
  auto finish = [&]() {
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!command.report.empty()) write_report(command.report, report, invoking_user());
  };
  int code = 0;
  try {
    code = run_inner(command, report);
    report.exit_code = code;
  } catch (const std::exception& e) {
    report.error = e.what();
    report.exit_code = exit_code::runner_error;
    try {
      finish();
    } catch (const std::exception& write_error) {
      spdlog::error("error: {}", write_error.what());
    }
    throw;
  }
  finish();  // a report that cannot be written is the run's error
  return code;
}

}  // namespace ce::runner
