// How a call goes (call.h):
//  1. prepare: COMPDIR, docker.conf and docker-setup.sh; the commit and
//     COMPDIR's tree through libgit2 (a dirty tree is refused unless the
//     request allows it); the GFS call and its inputs;
//  2. find_done: the call's record in the GFS;
//  3. plan the setup stages (stages/stage_engine.h);
//  4. run: apply the stages; under the computation's lock find the commit's
//     container in the docker-container file (or, when that file is
//     damaged, by labels), reuse it if it was made from the current final
//     stage (starting it if stopped), else make a new one; record it; run
//     the everytime steps;
//  5. release the lock and run the command as the configured user, so runs
//     of the same commit proceed concurrently; identical calls take the
//     call's lock, so they compute once; file the outputs.
#include "runner/call.h"

#include <boost/filesystem.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <tuple>
#include <unistd.h>

#include "runner/compdir.h"
#include "runner/container_mapping.h"
#include "runner/docker_conf.h"
#include "runner/exec_notes.h"
#include "runner/gfs.h"
#include "runner/git_identity.h"
#include "runner/supervisor.h"
#include "stages/file_lock.h"
#include "stages/host_files.h"
#include "stages/lint.h"

namespace ce::runner {

namespace fs = boost::filesystem;

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::cached: return "cached";
    case Outcome::computed: return "computed";
    case Outcome::command_failed: return "command_failed";
    case Outcome::timed_out: return "timed_out";
    case Outcome::cancelled: return "cancelled";
    case Outcome::engine_lost: return "engine_lost";
    case Outcome::gfs_full: return "gfs_full";
    case Outcome::setup_failed: return "setup_failed";
    case Outcome::no_exec: return "no_exec";
    case Outcome::not_executable: return "not_executable";
    case Outcome::planned: return "planned";
    case Outcome::verified: return "verified";
    case Outcome::corrupt: return "corrupt";
    case Outcome::failed: return "failed";
  }
  return "failed";
}

const char* to_string(OutputStatus status) {
  switch (status) {
    case OutputStatus::cached: return "cached";
    case OutputStatus::computed: return "computed";
    case OutputStatus::missing: return "missing";
    case OutputStatus::verified: return "verified";
  }
  return "missing";
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

namespace {

// A failure that ends the call with its own outcome (others end as failed).
struct Stop : std::runtime_error {
  Stop(Outcome outcome, const std::string& message, int code = 0)
      : std::runtime_error(message), outcome(outcome), code(code) {}
  Outcome outcome;
  int code;
};

// The invoker's credentials for the fleet's registry, from their Docker
// client's config.json, read with their rights (a file they cannot read
// is no file to them); none: anonymous.
std::string registry_auth_of(const Invoker& invoker, const std::string& registry) {
  if (invoker.docker_config.empty()) return {};
  std::string path = invoker.docker_config + "/config.json";
  stages::Fd fd = as_invoker(invoker, [&] {
    int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0 && errno != ENOENT && errno != ENOTDIR && errno != EACCES)
      throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    return f;
  });
  if (!fd) return {};
  struct stat st {};
  constexpr off_t most = 1 << 20;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > most)
    throw Stop(Outcome::failed, path + " is not a Docker client configuration (a regular file of at most 1 MiB); "
                                "fix or remove it and run again");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  if (::pread(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  try {
    return registry_auth_from_config(text, registry, path);
  } catch (const std::runtime_error& e) {
    throw Stop(Outcome::failed, e.what());
  }
}


double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The user the command runs as: docker.conf's, else the invoker (through
// sudo: SUDO_UID/SUDO_GID), so that what it writes belongs to them.
std::string command_user(const DockerConf& conf, const Invoker& invoker) {
  if (!conf.user.empty()) return conf.user;
  return std::to_string(invoker.uid) + ":" + std::to_string(invoker.gid);
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

// The machine's lock directory, root's alone.
stages::Fd private_lock_dir(const std::string& path) {
  fs::create_directories(path);
  stages::Fd fd = stages::open_directory(path, ::geteuid());
  ::fchmod(fd.get(), 0700);
  return fd;
}

// Stops the command once it has run `seconds` (docker.conf's timeout; 0:
// never) by cancelling the call's token.
class CommandTimer {
 public:
  CommandTimer(long seconds, docker::Cancellation& cancel) : seconds_(seconds), cancel_(cancel) {}
  ~CommandTimer() { disarm(); }
  void arm() {
    if (seconds_ <= 0 || thread_.joinable()) return;
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (changed_.wait_for(lock, std::chrono::seconds(seconds_), [this] { return disarmed_; })) return;
      fired_ = true;
      lock.unlock();
      cancel_.cancel();
    });
  }
  // The command has ended: no timeout from now on (one that came first stands).
  void disarm() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      disarmed_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fired_;
  }

 private:
  long seconds_;
  docker::Cancellation& cancel_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool disarmed_ = false, fired_ = false;
  std::thread thread_;
};

}  // namespace

struct CallPipeline::State : stages::StepObserver {
  CallRequest request;
  CallEvents& events;
  CallResult result;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point phase_start = started;

  std::shared_ptr<const PreparedComputation> prep;  // after prepare
  std::shared_ptr<const Gfs> store;
  std::unique_ptr<Call> call;
  docker::ImageInfo base;
  stages::StagePlan plan;
  stages::FileLock* noted_lock = nullptr;  // gets a note naming each step's exec
  std::string noted_container;

  State(CallRequest r, CallEvents& e) : request(std::move(r)), events(e) {}

  void end_phase(const char* phase) {
    auto now = std::chrono::steady_clock::now();
    double seconds = std::chrono::duration<double>(now - phase_start).count();
    result.facts.phases.emplace_back(phase, seconds);
    phase_start = now;
    events.phase_ended(phase, seconds);
  }

  void outputs(OutputStatus status, const CallRecord* record = nullptr) {
    result.outputs.clear();
    for (std::size_t k = 0; call && k < prep->contract->outputs.size(); ++k) {
      std::string sha256 = record && k < record->outputs.size() ? record->outputs[k].sha256 : std::string();
      result.outputs.push_back({prep->contract->outputs[k], call->output_path(k), status, sha256});
    }
  }

  void finish(Outcome outcome, std::string message = {}, int code = 0) {
    result.outcome = outcome;
    result.message = std::move(message);
    result.exit_code = code;
    result.facts.seconds = seconds_since(started);
  }

  // Runs a step; an exception ends the call with its outcome.
  template <class F>
  bool guarded(F step) {
    try {
      return step();
    } catch (const Stop& s) {
      finish(s.outcome, s.what(), s.code);
    } catch (const stages::StepFailed& f) {
      finish(Outcome::setup_failed, f.what(), f.exit_code());
    } catch (const std::exception& e) {
      finish(Outcome::failed, e.what());
    }
    return false;
  }

  // StepObserver: the report's step statuses, then the caller's events.
  void step_started(const stages::Step& step, stages::StepStatus status) override {
    events.step_started(step, status);
  }
  void step_output(const stages::Step& step, docker::StreamKind stream, std::string_view bytes) override {
    events.step_output(step, stream, bytes);
  }
  void step_finished(const stages::Step& step, stages::StepStatus status, double seconds) override {
    for (auto& s : result.facts.steps) {
      if (s.index != step.index) continue;
      s.status = stages::to_string(status);
      s.seconds = seconds;
    }
    events.step_finished(step, status, seconds);
  }
  void warning(const std::string& message) override { events.warning(message); }
  void exec_created(const std::string& exec_id) override {
    if (noted_lock) noted_lock->set_note(exec_note(noted_container, exec_id));
    events.exec_created(exec_id);
  }

  bool prepare();
  bool find_done();
  bool plan_stages(docker::Client& client);
  bool run(docker::Client& client, const docker::OutputSink& sink, docker::Cancellation& cancel);
  bool verify();

  std::string ancestor_snapshot(docker::Client& client, const ContainerMapping& mapping,
                                const std::string& stage_key);
  std::string commit_container(docker::Client& client, docker::ContainerSpec spec,
                               const SupervisorBinary& supervisor, bool& created);
  std::unique_ptr<stages::FileLock> take_lock(int dir, const std::string& name, const std::string& shown,
                                              const char* holder, Level level, docker::Cancellation& cancel);
  std::string kept_message(const std::string& why, const StagedCall& staged) const;
  // The record of a command that exited `code` (to be promoted with the outputs).
  CallRecord new_record(int code, const std::string& start_time, std::chrono::steady_clock::time_point started,
                        const std::string& final_key) const {
    CallRecord record;
    record.exit_code = code;
    record.start = start_time;
    record.end = stages::utc_now();
    record.seconds = seconds_since(started);
    record.computation_id = result.facts.id;
    record.commit = prep->identity.commit;
    record.tree = prep->identity.content_tree;
    record.dirty = result.facts.dirty;
    record.base_image_id = base.id;
    record.final_key = final_key;
    record.host = stages::host_name();
    record.compdir = prep->c.comp.dir;
    return record;
  }
  bool run_fleet(docker::Client& client, const FleetSettings& fleet, const stages::ApplyResult& applied,
                 const std::string& final_key,
                 const std::vector<std::string>& env, const docker::OutputSink& sink, docker::Cancellation& cancel);
};

std::shared_ptr<const PreparedComputation> prepare_computation(const CallRequest& r) {
  auto p = std::make_shared<PreparedComputation>();
  auto started = std::chrono::steady_clock::now();
  p->c = load_computation(r.compdir, r.invoker);
  // A CompEval computation (it has an `outputs` file) run without a command
  // is a call whose results live in the GFS.
  if (r.command.empty()) p->contract = read_contract(p->c.comp.fd->get(), p->c.comp.dir, r.compdir);

  auto shown = [&](const std::string& file) { return (fs::path(r.compdir) / file).lexically_normal().string(); };
  p->argv = r.command;
  // Without a command to run, a dry run still shows the plan, then says so.
  if (p->argv.empty()) {
    fs::path exec = p->contract ? fs::path(p->contract->exec) : fs::path(p->c.comp.dir) / "exec";
    std::string file = exec.filename().string();
    std::string kind = p->c.comp.kind(file);
    if (kind.empty()) {
      p->no_command = shown("exec") + ": no exec file; add one, or give a command after --";
      p->no_command_outcome = Outcome::no_exec;
    } else if (kind == "link") {
      p->no_command = shown(file) +
                      " is a symbolic link; ce-run runs only a regular file of the repository as exec: commit the "
                      "program itself, or a script that calls it";
      p->no_command_outcome = Outcome::not_executable;
    } else if (kind != "executable") {
      p->no_command = shown(file) + ": not executable; chmod +x it";
      p->no_command_outcome = Outcome::not_executable;
    } else {
      p->argv.push_back(exec.string());
    }
  }
  if (!p->no_command.empty() && r.mode != CallMode::dry_run) throw Stop(p->no_command_outcome, p->no_command);
  auto loaded = std::chrono::steady_clock::now();
  p->load_seconds = std::chrono::duration<double>(loaded - started).count();
  p->identity = identify(p->c.comp.dir);
  p->identity_seconds = seconds_since(loaded);
  if (!p->identity.dirty_files.empty() && r.dirty == DirtyPolicy::refuse) {
    std::string files;
    for (std::size_t i = 0; i < p->identity.dirty_files.size() && i < 20; ++i)
      files += "\n  " + p->identity.dirty_files[i];
    if (p->identity.dirty_files.size() > 20)
      files += "\n  ... and " + std::to_string(p->identity.dirty_files.size() - 20) + " more";
    throw std::runtime_error(r.compdir + " has uncommitted changes:" + files +
                             "\ncommit them, or run with --allow-dirty (results are then marked dirty)");
  }
  p->mapping_key = runner::mapping_key(p->identity);
  p->id = computation_id(p->identity);
  return p;
}

bool CallPipeline::State::prepare() {
  const CallRequest& r = request;
  if (r.computation) {
    prep = r.computation;
  } else {
    prep = prepare_computation(r);
    result.facts.phases.emplace_back(phase::load, prep->load_seconds);
    events.phase_ended(phase::load, prep->load_seconds);
    result.facts.phases.emplace_back(phase::identity, prep->identity_seconds);
    events.phase_ended(phase::identity, prep->identity_seconds);
    phase_start = std::chrono::steady_clock::now();
  }
  auto& facts = result.facts;
  facts.name = prep->c.comp.name;
  facts.dir = prep->c.comp.dir;
  facts.base_image = prep->c.comp.conf.image;
  result.argv = prep->argv;
  if (!prep->contract && !result.argv.empty() && r.command.empty())
    result.argv.insert(result.argv.end(), r.inputs.begin(), r.inputs.end());
  facts.commit = prep->identity.commit;
  facts.tree = prep->identity.content_tree;
  facts.id = prep->id;
  facts.dirty = !prep->identity.dirty_files.empty();
  store = r.open_gfs ? r.open_gfs : std::make_shared<const Gfs>(r.host.gfs);
  store->check_allowed(r.invoker, r.host.default_gfs, prep->c.comp.host.gfs);
  if (prep->contract) {
    call = std::make_unique<Call>(*store, prep->c.comp.name, facts.id, *prep->contract, r.inputs, r.invoker);
    for (const auto& f : call->inputs()) facts.inputs.push_back({f.name, f.path, f.sha1});
  }
  return true;
}

bool CallPipeline::State::find_done() {
  if (!call) return true;
  auto done = call->done();
  // The logs of the call's latest run, if any (ce-run log).
  if (call->has_log()) {
    result.stdout_log = call->log_path(LogStream::out);
    result.stderr_log = call->log_path(LogStream::err);
  }
  end_phase(phase::inputs);
  if (done) {
    // The no-change path: no engine, no container.
    outputs(OutputStatus::cached, &*done);
    finish(Outcome::cached);
    return false;
  }
  if (request.mode == CallMode::dry_run) {
    outputs(OutputStatus::missing);
    if (prep->no_command.empty())
      finish(Outcome::planned);
    else
      finish(prep->no_command_outcome, prep->no_command);
    return false;
  }
  return true;
}

bool CallPipeline::State::verify() {
  if (!call) throw std::runtime_error(request.compdir + " is not a CompEval computation (it has no outputs file): "
                                      "there is no result to verify");
  result.problems = call->verify();
  if (result.problems.empty()) {
    auto record = call->done();
    outputs(OutputStatus::verified, record ? &*record : nullptr);
    finish(Outcome::verified);
    return false;
  }
  // A corrupt result must not count as done: withdraw its record.
  std::string message = "the call's outputs differ from its record";
  if (auto aside = call->withdraw_record(); !aside.empty())
    message += "; the record is withdrawn to " + aside + ", so the next call computes it again";
  finish(Outcome::corrupt, message, 1);
  return false;
}

bool CallPipeline::State::plan_stages(docker::Client& client) {
  events.diagnostics(prep->c.script, all_warnings(prep->c.script, prep->c.comp.conf));
  auto engine = client.check_engine();
  events.note(Level::debug, "engine " + engine.version + " (API " + engine.api_version + ") at " +
                                client.address().uri());
  const std::string& image = prep->c.comp.conf.image;
  if (!client.find_image(image)) {
    events.note(Level::info, "image " + image + " is not here; pulling it");
    client.pull_image(image, [this](const docker::PullProgress& p) {
      if (p.progress.empty()) events.note(Level::debug, "pull: " + p.id + " " + p.status);
    });
  }
  base = client.inspect_image(image);
  plan = stages::plan_stages(client, prep->c.script, image, {base.id, prep->identity.content_tree});
  auto& facts = result.facts;
  facts.base_image_id = base.id;
  facts.final_key = plan.final_key.empty() ? base.id : plan.final_key;
  for (const auto& p : plan.steps) {
    bool stage = p.step->kind == stages::StepKind::stage;
    facts.steps.push_back({p.step->index, stage ? "stage" : "everytime", p.step->first_line, p.step->last_line,
                           p.step->stage_number, prep->c.script.lines_of(*p.step), p.key, p.cached ? "cached" : "planned",
                           0});
  }
  if (request.mode != CallMode::dry_run) return true;
  end_phase(phase::setup);
  auto mapping = read_mapping(prep->c.comp).mapping;
  const MappingEntry* entry = mapping.find(prep->mapping_key);
  result.plan_container = entry && client.find_container(entry->container)
                              ? "would reuse " + entry->container.substr(0, 12) + " if made from these stages"
                              : "would make one for commit " + prep->identity.commit.substr(0, 12);
  if (prep->no_command.empty())
    finish(Outcome::planned);
  else
    finish(prep->no_command_outcome, prep->no_command);
  return false;
}

// With a start from an ancestor: a snapshot of the newest ancestor commit's
// container made from the same stages, to start the new commit's container
// from.
std::string CallPipeline::State::ancestor_snapshot(docker::Client& client, const ContainerMapping& mapping,
                                                   const std::string& stage_key) {
  if (!prep->identity.dirty_files.empty()) return {};
  for (const auto& e : mapping.entries) {
    if (e.commit.size() != 40 || e.commit == prep->identity.commit || e.stage_key != stage_key) continue;
    if (!is_ancestor(prep->c.comp.dir, e.commit, prep->identity.commit)) continue;
    auto info = client.find_container(e.container);
    // Only this computation's own container of that commit: the file is the
    // user's, and a container of somebody else's must not be copied.
    if (!info || !is_run_container_of(info->labels, prep->c.comp.dir, e.commit) ||
        info->labels[label::stage_key] != stage_key)
      continue;
    docker::CommitSpec commit;
    commit.container = info->id;
    commit.repo = stages::stage_repository(prep->c.comp.name);
    commit.tag = "snapshot-" + e.commit.substr(0, 12);
    commit.comment = "ce-run: snapshot of the container of commit " + e.commit;
    commit.labels = {{stages::label::role, "snapshot"}, {label::snapshot_of, e.commit},
                     {stages::label::computation, prep->c.comp.name}, {stages::label::key, ""}};
    auto image = client.commit(commit);
    events.note(Level::info,
                "continuing from a snapshot of the container of ancestor commit " + e.commit.substr(0, 12));
    return image;
  }
  return {};
}

// Finds or makes the commit's container, records it, makes sure it runs.
std::string CallPipeline::State::commit_container(docker::Client& client, docker::ContainerSpec spec,
                                                  const SupervisorBinary& supervisor, bool& created) {
  created = false;
  const std::string& dir = prep->c.comp.dir;
  std::string short_commit = prep->identity.commit.substr(0, 12);
  auto read = read_mapping(prep->c.comp);
  ContainerMapping mapping = read.mapping;
  std::string path = prep->c.comp.shown_file("docker-container");
  if (!read.problem.empty()) {
    events.note(Level::warning, path + ": " + read.problem + "; rebuilding it from the containers' labels");
    mapping = {};
    auto found = client.list_containers(run_container_filter(dir));
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
  if (const MappingEntry* entry = mapping.find(prep->mapping_key)) {
    auto info = client.find_container(entry->container);
    std::string short_id = entry->container.substr(0, 12);
    if (info && !is_run_container_of(info->labels, dir, prep->mapping_key)) {
      // The file is the user's to write: what it names is not trusted.
      events.note(Level::warning, path + " names the container " + short_id +
                                      ", which is not this computation's container of commit " + short_commit +
                                      "; leaving it alone and making one");
      info.reset();
    } else if (!info) {
      events.note(Level::info,
                  "the container " + short_id + " of commit " + short_commit + " is gone; making a new one");
    }
    if (!info) {
    } else if (info->labels[label::stage_key] != spec.labels[label::stage_key] ||
               info->labels[label::settings] != settings) {
      events.note(Level::info, "the container " + short_id + " of commit " + short_commit +
                                   " was made from other stages or settings; replacing it");
      client.remove_container(info->id, docker::Force::yes);
    } else {
      container = info->id;
      if (!info->state.running) {
        events.note(Level::info,
                    "starting the stopped container " + container.substr(0, 12) + " of commit " + short_commit);
        client.start_container(container);
      } else {
        events.note(Level::debug, "reusing container " + container.substr(0, 12));
      }
    }
  }
  if (container.empty()) {
    if (request.start == StartPolicy::from_ancestor) {
      auto snapshot = ancestor_snapshot(client, mapping, spec.labels[label::stage_key]);
      if (!snapshot.empty()) spec.image = snapshot;  // its label names the ancestor commit
    }
    spec.labels[label::settings] = settings;
    spec.labels[label::created] = stages::utc_now();
    container = client.create_container(spec);
    try {
      client.start_container(container);
    } catch (...) {
      client.remove_container(container, docker::Force::yes);
      throw;
    }
    events.note(Level::info, "made container " + container.substr(0, 12) + " for commit " + short_commit);
    created = true;
  }
  check_mounts(client, container, {{store->path(), store->fd()}, {dir, prep->c.comp.fd->get()}});
  mapping.put({prep->mapping_key, prep->identity.content_tree, container, spec.labels[label::stage_key], stages::utc_now()});
  write_mapping(prep->c.comp, mapping, request.invoker);
  return container;
}

// Takes a lock, waiting (until cancelled: then null) while another call
// holds it.
std::unique_ptr<stages::FileLock> CallPipeline::State::take_lock(int dir, const std::string& name,
                                                                 const std::string& shown, const char* holder,
                                                                 Level level, docker::Cancellation& cancel) {
  try {
    auto free = std::make_unique<stages::FileLock>(dir, name, shown, stages::Wait::no);
    if (free->held()) return free;
    events.note(level, std::string("waiting for ") + holder + " to finish");
    return std::make_unique<stages::FileLock>(dir, name, shown, stages::Wait::yes, &cancel);
  } catch (const docker::Cancelled&) {
    return nullptr;
  }
}

std::string CallPipeline::State::kept_message(const std::string& why, const StagedCall& staged) const {
  return why + "; nothing was filed in the GFS; the outputs so far are kept for inspection in the container at " +
         staged.container_path() + " (ce-run shell " + request.compdir + " shows them; ce-run gc removes them)";
}

bool CallPipeline::State::run(docker::Client& client, const docker::OutputSink& sink,
                              docker::Cancellation& caller_cancel) {
  // The call's own token: the caller's, and the command's timeout.
  docker::Cancellation cancel;
  auto linked = caller_cancel.on_cancel([&cancel] { cancel.cancel(); });
  const DockerConf& conf = prep->c.comp.conf;
  const std::string& dir = prep->c.comp.dir;
  const HostSettings& host = request.host;
  const std::string& gfs = store->path();
  auto cancelled = [&] {
    finish(Outcome::cancelled, call ? "the call was cancelled; nothing was filed in the GFS" : "the call was cancelled");
    if (call) outputs(OutputStatus::missing);
    return false;
  };

  std::vector<std::string> env = {"COMPDIR=" + dir, "GFSDIR=" + gfs, "CE_COMMIT=" + prep->identity.commit};
  stages::ApplyOptions options;
  options.computation = prep->c.comp.name;
  options.compdir = dir;
  options.env = env;
  options.lock_dir = host.lock_dir;
  options.keep = request.keep_build_container ? stages::KeepBuildContainer::on_failure : stages::KeepBuildContainer::no;
  options.memory_bytes = conf.memory_bytes;
  options.pids = conf.pids;
  options.check_container = [&](const std::string& id) { check_mounts(client, id, {{dir, prep->c.comp.fd->get()}}); };
  options.cancel = &cancel;
  stages::Fd locks = private_lock_dir(host.lock_dir);
  const bool on_fleet = request.swarm || prep->c.comp.host.swarm;
  FleetSettings fleet;
  if (on_fleet) {
    const HostConf& hc = prep->c.comp.host;
    if (hc.registry.empty())
      throw Stop(Outcome::failed, "a fleet call needs the fleet's registry, which every node pulls stage images "
                                  "from: registry = \"HOST:PORT\" in " + hc.origin + " (docs/fleet.md)");
    fleet.registry = hc.registry;
    fleet.registry_auth = registry_auth_of(request.invoker, hc.registry);
    fleet.attempts = static_cast<int>(hc.swarm_attempts);
  }
  stages::ApplyResult applied;
  // A fleet call's last stage in the fleet's registry already (another
  // submitter built it): nothing to build here, the nodes pull it.
  bool in_registry = false;
  if (on_fleet && !plan.complete() && !plan.final_key.empty()) {
    try {
      in_registry = client.registry_digest(stage_repository(fleet) + ":" + stage_tag(plan.final_key),
                                           fleet.registry_auth).has_value();
    } catch (const docker::EngineError&) {
      // (Unreachable or refusing: the stages are built, and publishing says why.)
    }
  }
  if (in_registry) {
    applied.final_key = plan.final_key;
    for (const auto& planned : plan.steps) {
      bool stage = planned.step->kind == stages::StepKind::stage;
      if (stage) step_finished(*planned.step, stages::StepStatus::cached, 0);
    }
    events.note(Level::info, "the stages are in the fleet's registry already: none is built here");
  } else {
    try {
      applied = stages::apply_stages(client, prep->c.script, plan, options, *this);
    } catch (const docker::Cancelled&) {
      return cancelled();
    }
  }
  std::string final_key = applied.final_key.empty() ? base.id : applied.final_key;
  end_phase(phase::setup);
  if (cancel.cancelled()) return cancelled();

  for (const auto& [k, v] : conf.env) env.push_back(k + "=" + v);
  if (on_fleet) return run_fleet(client, fleet, applied, final_key, env, sink, cancel);
  auto supervisor = supervisor_on_host(host.supervisor);
  docker::ContainerSpec spec;
  spec.image = applied.image_id;
  spec.entrypoint = {"sleep"};
  spec.cmd = {"2147483647"};
  spec.init = true;
  spec.env = env;
  // The GFS is read-only in the container: only ce-run writes there. A
  // command writes its outputs into the container's staging directory,
  // which only root on the host can reach (gfs.h, docs/security.md).
  std::string staging = staging_key(dir, prep->mapping_key);
  spec.binds = {{gfs, gfs, docker::Access::read_only},
                {dir, dir, docker::Access::read_only},
                {container_staging_dir(host.staging_root, staging), staging_in_container, docker::Access::read_write},
                {supervisor.path, supervisor_in_container, docker::Access::read_only}};
  spec.network_mode = conf.network;
  spec.nano_cpus = conf.nano_cpus;
  spec.memory_bytes = conf.memory_bytes;
  spec.pids_limit = conf.pids;
  spec.labels = run_container_labels(prep->c.comp.name, dir, prep->mapping_key, prep->identity.content_tree, final_key, staging);

  stages::Supervision supervision{supervisor_in_container, &cancel};
  std::string container;
  {
    // Setup of the commit's container and its everytime steps: one at a time.
    std::string lock_name = "compdir-" + stages::sha256_hex(dir).substr(0, 24) + ".lock";
    auto lock = take_lock(locks.get(), lock_name, host.lock_dir + "/" + lock_name,
                          "another ce-run setting up this computation's container", Level::debug, cancel);
    if (!lock) return cancelled();
    exclude_from_git(prep->identity, request.invoker);
    container = commit_container(client, spec, supervisor, result.facts.container_created);
    result.facts.container_id = container;
    end_phase(phase::container);
    std::vector<const stages::Step*> everytime;
    for (const auto& s : prep->c.script.steps)
      if (s.kind == stages::StepKind::everytime) everytime.push_back(&s);
    if (!everytime.empty()) {
      // A ce-run killed during its everytime steps: its supervisor is
      // stopping the step it left; run them again once it has.
      if (await_leftover_exec(client, lock->previous_note(), container))
        events.note(Level::warning, "waited for an everytime step of an interrupted ce-run to stop in the container " +
                                        container.substr(0, 12));
      auto shell = stages::detect_shell(client, container, applied.image_id, conf.image, *this);
      noted_lock = lock.get();
      noted_container = container;
      try {
        stages::run_everytime_steps(client, container, prep->c.script, everytime, shell, env, *this, &supervision,
                                    conf.network == "none"
                                        ? "\nthe computation's container has no network (docker.conf network = "
                                          "\"none\"); if the step needs it, move it into a stage or set network = "
                                          "\"bridge\""
                                        : "");
      } catch (const docker::Cancelled&) {
        noted_lock = nullptr;
        return cancelled();
      } catch (...) {
        noted_lock = nullptr;
        throw;
      }
      noted_lock = nullptr;
      end_phase(phase::everytime);
    }
  }
  if (cancel.cancelled()) return cancelled();

  // The command: concurrent with other runs of the same commit; identical
  // calls (same computation ID and inputs) one at a time, so they compute once.
  std::unique_ptr<stages::FileLock> call_lock;
  std::optional<StagedCall> staged;
  std::vector<std::string> argv = result.argv;
  std::string user = command_user(conf, request.invoker);
  auto start_time = stages::utc_now();
  auto started = std::chrono::steady_clock::now();
  if (call) {
    stages::Fd call_locks = call->lock_dir();
    call_lock = take_lock(call_locks.get(), call->inputs_key(), call->lock_path(),
                          "another ce-run computing the same call", Level::info, cancel);
    if (!call_lock) return cancelled();
    if (auto done = call->done()) {  // another ce-run computed it while we waited
      outputs(OutputStatus::cached, &*done);
      finish(Outcome::cached);
      return false;
    }
    // A ce-run of this call killed during its command: its supervisor is
    // stopping the command, which must not go on writing beside ours.
    if (await_leftover_exec(client, call_lock->previous_note(), container))
      events.note(Level::warning, "waited for the command of an interrupted ce-run of this call to stop");
    call->store_inputs();
    staged.emplace(host.staging_root, staging, call->staging_name(), user);
    for (const auto& f : call->inputs()) argv.push_back(f.stored);
    for (std::size_t k = 0; k < prep->contract->outputs.size(); ++k)
      argv.push_back(staged->container_path() + "/" + output_number(k));
  }
  // The command's output goes to the caller and, for a GFS call, into its
  // log beside the record (ce-run log).
  std::optional<CallLog> log;
  auto keep_log = [&] {
    log->keep();
    result.stdout_log = call->log_path(LogStream::out);
    result.stderr_log = call->log_path(LogStream::err);
  };
  if (call) log.emplace(*call);
  docker::OutputSink tee = [&](docker::StreamKind kind, std::string_view bytes) {
    if (log) log->append(kind == docker::StreamKind::stderr_stream ? LogStream::err : LogStream::out, bytes);
    sink(kind, bytes);
  };
  docker::ExecSpec exec;
  exec.cmd = argv;
  exec.env = env;
  exec.working_dir = conf.workdir.empty() ? dir : conf.workdir;
  exec.user = user;
  CommandTimer timer(conf.timeout_seconds, cancel);
  int code = 0;
  try {
    if (request.servers) {
      auto server = request.servers->get(client, container, exec, supervisor_in_container);
      if (call_lock) call_lock->set_note(exec_note(container, server->exec_id()));
      timer.arm();
      code = server->run(argv, tee, &cancel);
    } else {
      code = client.run_supervised_exec(
          container, exec, supervisor_in_container, tee,
          [&](const std::string& id) {
            if (call_lock) call_lock->set_note(exec_note(container, id));
            timer.arm();
          },
          &cancel);
    }
  } catch (const docker::EngineError& e) {
    // The engine died under the command (or was restarted, and has
    // forgotten the exec): its result is unknown.
    if (e.kind() != docker::ErrorKind::unreachable && e.kind() != docker::ErrorKind::no_such_exec &&
        e.kind() != docker::ErrorKind::no_such_container)
      throw;
    if (call) outputs(OutputStatus::missing);
    throw Stop(Outcome::engine_lost, "the Docker engine at " + client.address().uri() +
                                         " went away while the command ran, so its result is unknown" +
                                         (call ? "; nothing was filed in the GFS" : "") +
                                         "; start the engine (scripts/start-docker) and run again");
  }
  timer.disarm();
  end_phase(phase::command);
  result.exit_code = code;
  if (timer.fired()) {
    std::string what = "the command ran longer than docker.conf's timeout (" + std::to_string(conf.timeout_seconds) +
                       " s) and was stopped";
    if (call) outputs(OutputStatus::missing);
    if (log) keep_log();
    finish(Outcome::timed_out, call ? kept_message(what, *staged) : what, code);
    return false;
  }
  if (cancel.cancelled()) {
    if (!call) return cancelled();
    outputs(OutputStatus::missing);
    finish(Outcome::cancelled, kept_message("the call was cancelled", *staged), code);
    return false;
  }
  if (!call) {
    finish(code == 0 ? Outcome::computed : Outcome::command_failed, {}, code);
    return false;
  }
  if (full_file_system(staged->host_path())) {
    // Outputs written to a full file system may be cut short, and keeping
    // them would keep it full: remove them.
    try {
      staged->remove();
    } catch (const std::exception& e) {
      events.note(Level::warning, e.what());
    }
    outputs(OutputStatus::missing);
    throw Stop(Outcome::gfs_full,
               "the file system of the staging area (" + host.staging_root + ") was full when the command ended (" +
                   argv.front() + " exited with " + std::to_string(code) +
                   "): its outputs may be cut short, so nothing was filed and they were removed; free space there "
                   "and run again",
               code);
  }
  if (code != 0) {
    outputs(OutputStatus::missing);
    keep_log();
    finish(Outcome::command_failed, kept_message(argv.front() + " exited with " + std::to_string(code), *staged),
           code);
    return false;
  }
  CallRecord record = new_record(code, start_time, started, final_key);
  try {
    record = call->promote(*staged, record);
  } catch (const std::exception& e) {
    outputs(OutputStatus::missing);
    finish(Outcome::failed, kept_message(e.what(), *staged));
    return false;
  }
  try {
    staged->remove();
  } catch (const std::exception& e) {
    events.note(Level::warning, std::string(e.what()) + "; ce-run gc removes it");
  }
  keep_log();
  end_phase(phase::filing);
  outputs(OutputStatus::computed, &record);
  finish(Outcome::computed);
  return false;
}

namespace {

// A file of the fleet's own in GFSDIR/.ce-run/DIR, made once: `name` is
// there already, or `write` fills a fresh temporary that takes its name.
void make_once(int parent, const std::string& dir, const std::string& name, const std::string& shown,
               const std::function<void(int at, const std::string& temp)>& write) {
  stages::Fd d = stages::open_directory_at(parent, dir, stages::Create::yes, 0755, ::geteuid(), shown);
  struct stat st {};
  if (::fstatat(d.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return;
  std::string temp = ".tmp." + name + "." + stages::random_word();
  try {
    write(d.get(), temp);
  } catch (...) {
    stages::remove_tree_at(d.get(), temp, shown + "/" + temp);
    throw;
  }
  if (::renameat(d.get(), temp.c_str(), d.get(), name.c_str()) != 0) {
    int e = errno;
    stages::remove_tree_at(d.get(), temp, shown + "/" + temp);
    if (e != EEXIST && e != ENOTEMPTY)  // (another ce-run made it meanwhile: the same content)
      throw std::runtime_error("cannot make " + shown + "/" + name + ": " + std::strerror(e));
  }
}

// The bytes of a job's output file `name` in its staging directory from
// `offset` on, to `to`; the offset after them. The command's user owns the
// directory: anything but a regular file there is no output.
off_t read_job_output(int staging, const char* name, off_t offset, const std::function<void(std::string_view)>& to) {
  stages::Fd fd(::openat(staging, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return offset;
  char buffer[65536];
  for (ssize_t n; (n = ::pread(fd.get(), buffer, sizeof buffer, offset)) > 0; offset += n)
    to(std::string_view(buffer, static_cast<std::size_t>(n)));
  return offset;
}

}  // namespace

// The command as a job of the fleet (docs/fleet.md): the stage image in the
// registry, COMPDIR's tree and the supervisor in the GFS every node mounts
// at the same path, a staging directory there per attempt; then filed as a
// local call's outputs are.
bool CallPipeline::State::run_fleet(docker::Client& client, const FleetSettings& fleet,
                                    const stages::ApplyResult& applied, const std::string& final_key,
                                    const std::vector<std::string>& env, const docker::OutputSink& sink,
                                    docker::Cancellation& cancel) {
  const DockerConf& conf = prep->c.comp.conf;
  const std::string& dir = prep->c.comp.dir;
  const std::string& gfs = store->path();
  if (!call)
    throw Stop(Outcome::failed, "--swarm runs CompEval calls (a computation with inputs and outputs files, its "
                                "results filed in the GFS); run " + request.compdir + " without --swarm");
  if (!prep->identity.dirty_files.empty())
    throw Stop(Outcome::failed, "--swarm runs the commit, and " + request.compdir + " has uncommitted changes (" +
                                    prep->identity.dirty_files.front() +
                                    (prep->identity.dirty_files.size() > 1 ? ", ..." : "") +
                                    "); commit them and run again");
  std::string image;
  try {
    image = publish_stage_image(client, fleet, applied.image_id, final_key);
  } catch (const std::exception& e) {
    std::string credentials;
    if (fleet.registry_auth.empty())
      credentials = "; ce-run found no credentials for it in " +
                    (request.invoker.docker_config.empty() ? std::string("the invoker's Docker config")
                                                           : request.invoker.docker_config + "/config.json") +
                    " (docker login " + fleet.registry + " writes them)";
    throw Stop(Outcome::failed, "cannot publish the stage image to the fleet's registry " + fleet.registry + ": " +
                                    e.what() + credentials + "; check the registry (docs/fleet.md) and run again");
  }
  result.facts.job_image = image;
  events.note(Level::info, "stage image " + image);

  // What every node needs besides the image, in the GFS: COMPDIR's tree and
  // the supervisor, each made once and named by its content.
  std::string own_shown = gfs + "/" + own_dir;
  stages::Fd own = store->dir(own_dir, stages::Create::yes);
  ::fchmod(own.get(), 0700);
  const std::string& tree = prep->identity.tree;
  make_once(own.get(), "trees", tree, own_shown + "/trees", [&](int at, const std::string& temp) {
    if (::mkdirat(at, temp.c_str(), 0755) != 0)
      throw std::runtime_error("cannot make " + own_shown + "/trees/" + temp + ": " + std::strerror(errno));
    stages::Fd into(::openat(at, temp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    export_tree(dir, tree, into.get());
  });
  auto supervisor = supervisor_on_host(request.host.supervisor);
  stages::Fd binary(::open(supervisor.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!binary) throw std::runtime_error("cannot read " + supervisor.path + ": " + std::strerror(errno));
  std::string supervisor_name = "supervise-" + sha256_fd(binary.get(), supervisor.path).substr(0, 16);
  make_once(own.get(), "bin", supervisor_name, own_shown + "/bin", [&](int at, const std::string& temp) {
    stages::Fd to(::openat(at, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755));
    if (!to || ::lseek(binary.get(), 0, SEEK_SET) != 0 || stages::copy_fd(binary.get(), to.get()) != 0 ||
        ::fchmod(to.get(), 0755) != 0 || ::fsync(to.get()) != 0)
      throw std::runtime_error("cannot copy " + supervisor.path + " to " + own_shown + "/bin: " + std::strerror(errno));
  });

  // The command: identical calls one at a time, as for a local call.
  stages::Fd call_locks = call->lock_dir();
  auto call_lock = take_lock(call_locks.get(), call->inputs_key(), call->lock_path(),
                             "another ce-run computing the same call", Level::info, cancel);
  if (!call_lock) {
    finish(Outcome::cancelled, "the call was cancelled; nothing was filed in the GFS");
    outputs(OutputStatus::missing);
    return false;
  }
  if (auto done = call->done()) {
    outputs(OutputStatus::cached, &*done);
    finish(Outcome::cached);
    return false;
  }
  call->store_inputs();
  std::string user = command_user(conf, request.invoker);
  FleetCall job;
  job.call = gfs + "/" + call->relative_dir() + "/" + call->inputs_key();
  job.computation = prep->c.comp.name;
  job.image = image;
  job.env = env;
  job.supervisor = supervisor_in_container;
  job.network = conf.network;
  job.nano_cpus = conf.nano_cpus;
  job.memory_bytes = conf.memory_bytes;
  job.pids = conf.pids;
  job.timeout_seconds = static_cast<double>(conf.timeout_seconds);
  job.binds = {{gfs, gfs, docker::Access::read_only},
               {own_shown + "/trees/" + tree, dir, docker::Access::read_only},
               {own_shown + "/bin/" + supervisor_name, supervisor_in_container, docker::Access::read_only}};
  // Other calls' trees and staging: not for this job's root steps to read.
  job.masked = {own_shown};
  // Each attempt's staging directory is seen at one path in its container.
  const std::string staged_in_container = std::string(staging_in_container) + "/call";
  // The steps' shell as the stage images recorded it; else the job looks.
  job.job.shell = "auto";
  if (auto final_image = applied.image_id.empty() ? std::nullopt : client.find_image(applied.image_id)) {
    auto recorded = final_image->labels.find(stages::label::shell);
    if (recorded != final_image->labels.end()) job.job.shell = recorded->second == "bash" ? "bash" : "sh";
  }
  job.job.origin = prep->c.script.origin;
  for (const auto& step : prep->c.script.steps)
    if (step.kind == stages::StepKind::everytime)
      job.job.steps.push_back({std::to_string(step.stage_number), stages::step_program(prep->c.script, step)});
  job.job.user = user;
  job.job.no_network = conf.network == "none";
  job.job.workdir = conf.workdir.empty() ? dir : conf.workdir;
  job.job.argv = result.argv;
  for (const auto& f : call->inputs()) job.job.argv.push_back(f.stored);
  for (std::size_t k = 0; k < prep->contract->outputs.size(); ++k)
    job.job.argv.push_back(staged_in_container + "/" + output_number(k));
  job.constraints = conf.placement;
  // Each attempt's staging directory (a killed submitter's too, adopted),
  // by attempt number.
  std::map<int, StagedCall> attempts;
  const std::string staging_root = fleet_staging_root(gfs);
  auto shown_to_fleet = [&](int attempt) {
    const StagedCall& s = attempts.at(attempt);
    return FleetStaging{s.fd(), s.name(), s.host_path(), staged_in_container};
  };
  job.staging = [&](int attempt) {
    attempts.insert_or_assign(attempt, StagedCall(staging_root, fleet_staging_key, call->staging_name(), user));
    return shown_to_fleet(attempt);
  };
  job.adopt = [&](const std::string& name, int attempt) -> std::optional<FleetStaging> {
    if (!call->is_staging_name(name)) return std::nullopt;
    auto adopted = StagedCall::adopt(staging_root, fleet_staging_key, name);
    if (!adopted) return std::nullopt;
    attempts.insert_or_assign(attempt, std::move(*adopted));
    return shown_to_fleet(attempt);
  };
  auto start_time = stages::utc_now();
  auto started_at = std::chrono::steady_clock::now();
  // Every attempt's staging goes but the one that ended the call.
  auto drop_others = [&](int keep) {
    for (auto& [attempt, staged] : attempts) {
      if (attempt == keep) continue;
      try {
        staged.remove();
      } catch (const std::exception& e) {
        events.note(Level::warning, e.what());
      }
    }
  };
  // The job's output passed on while it runs (to a terminal, a service's
  // log): the new bytes of the attempt's files at each look at its task.
  struct Shown {
    int attempt = 0;
    off_t out = 0, err = 0;
  } shown;
  auto pass_on = [&](int attempt) {
    auto it = attempts.find(attempt);
    if (it == attempts.end()) return;
    if (shown.attempt != attempt) shown = {attempt, 0, 0};
    shown.out = read_job_output(it->second.fd(), docker::job::stdout_file, shown.out,
                                [&](std::string_view b) { sink(docker::StreamKind::stdout_stream, b); });
    shown.err = read_job_output(it->second.fd(), docker::job::stderr_file, shown.err,
                                [&](std::string_view b) { sink(docker::StreamKind::stderr_stream, b); });
  };
  job.progress = pass_on;
  FleetRun ran;
  try {
    ran = run_on_fleet(client, fleet, job, cancel, [&](const std::string& text) { events.note(Level::info, text); });
  } catch (...) {
    drop_others(0);  // (an error of the engine's: the job was removed, its staging goes)
    throw;
  }
  end_phase(phase::command);
  result.facts.node = ran.node;
  result.facts.attempts = ran.attempt;
  result.facts.adopted = ran.adopted;
  drop_others(ran.end == FleetRun::End::ran || ran.end == FleetRun::End::setup_failed ? ran.attempt : 0);
  outputs(OutputStatus::missing);
  switch (ran.end) {
    case FleetRun::End::cancelled:
      finish(Outcome::cancelled, "the call was cancelled and its job ended; nothing was filed in the GFS");
      return false;
    case FleetRun::End::timed_out:
      finish(Outcome::timed_out, "the command ran longer than docker.conf's timeout (" +
                                     std::to_string(conf.timeout_seconds) + " s) on " + ran.node +
                                     "; its job was ended and nothing was filed in the GFS", 124);
      return false;
    case FleetRun::End::fits_nowhere:
      finish(Outcome::failed, ran.message);
      return false;
    case FleetRun::End::fleet_failed:
      finish(Outcome::failed, "the fleet lost the call " + std::to_string(ran.attempt) + " time" +
                                  (ran.attempt == 1 ? "" : "s") + " (host.conf swarm_attempts = " +
                                  std::to_string(fleet.attempts) + "); nothing was filed in the GFS:\n" + ran.message);
      return false;
    case FleetRun::End::ran:
    case FleetRun::End::setup_failed:
      break;
  }
  StagedCall& staged = attempts.at(ran.attempt);
  // The rest of the job's output to the caller; all of it into the log, as
  // a local call's.
  pass_on(ran.attempt);
  CallLog log(*call);
  for (auto [stream, name] : {std::pair{LogStream::out, docker::job::stdout_file},
                              std::pair{LogStream::err, docker::job::stderr_file}})
    read_job_output(staged.fd(), name, 0, [&, stream = stream](std::string_view bytes) { log.append(stream, bytes); });
  log.keep();
  result.stdout_log = call->log_path(LogStream::out);
  result.stderr_log = call->log_path(LogStream::err);
  if (ran.end == FleetRun::End::setup_failed) {
    std::vector<const stages::Step*> everytime;
    for (const auto& s : prep->c.script.steps)
      if (s.kind == stages::StepKind::everytime) everytime.push_back(&s);
    std::string which = ran.step >= 1 && static_cast<std::size_t>(ran.step) <= everytime.size()
                            ? "everytime step " + std::to_string(everytime[static_cast<std::size_t>(ran.step - 1)]->index) +
                                  " (" + prep->c.script.lines_of(*everytime[static_cast<std::size_t>(ran.step - 1)]) + ")"
                            : "an everytime step";
    staged.remove();
    finish(Outcome::setup_failed, which + " failed with exit code " + std::to_string(ran.exit_code) + " on " +
                                      ran.node + "; its output is in " + result.stderr_log + "; fix it and run again",
           ran.exit_code);
    return false;
  }
  result.exit_code = ran.exit_code;
  if (ran.exit_code != 0) {
    std::string what = result.argv.front() + " exited with " + std::to_string(ran.exit_code) + " on " + ran.node +
                       "; nothing was filed in the GFS; its outputs so far are kept in " + staged.host_path() +
                       " (ce-run gc removes them)";
    finish(Outcome::command_failed, what, ran.exit_code);
    return false;
  }
  CallRecord record = new_record(0, start_time, started_at, final_key);
  try {
    record = call->promote(staged, record);
  } catch (const std::exception& e) {
    finish(Outcome::failed, std::string(e.what()) + "; nothing was filed in the GFS; the outputs are kept in " +
                                staged.host_path());
    return false;
  }
  try {
    staged.remove();
  } catch (const std::exception& e) {
    events.note(Level::warning, std::string(e.what()) + "; ce-run gc removes it");
  }
  end_phase(phase::filing);
  outputs(OutputStatus::computed, &record);
  finish(Outcome::computed);
  return false;
}

CommandServers::CommandServers() = default;
CommandServers::~CommandServers() = default;

std::shared_ptr<docker::CommandServer> CommandServers::get(docker::Client& client, const std::string& container,
                                                           const docker::ExecSpec& spec,
                                                           const std::string& supervisor) {
  std::string key = container + "\n" + spec.user + "\n" + spec.working_dir;
  for (const auto& e : spec.env) key += "\n" + e;
  std::lock_guard<std::mutex> lock(mutex_);
  auto& server = servers_[key];
  if (!server || !server->alive()) server = std::make_shared<docker::CommandServer>(client, container, spec, supervisor);
  return server;
}

CallPipeline::CallPipeline(CallRequest request, CallEvents& events)
    : state_(std::make_unique<State>(std::move(request), events)) {}
CallPipeline::~CallPipeline() = default;

bool CallPipeline::prepare() {
  return state_->guarded([&] { return state_->prepare(); });
}
bool CallPipeline::find_done() {
  return state_->guarded([&] { return state_->find_done(); });
}
bool CallPipeline::plan(docker::Client& client) {
  return state_->guarded([&] { return state_->plan_stages(client); });
}
void CallPipeline::run(docker::Client& client, const docker::OutputSink& sink, docker::Cancellation& cancel) {
  state_->guarded([&] { return state_->run(client, sink, cancel); });
}
void CallPipeline::verify() {
  state_->guarded([&] { return state_->verify(); });
}
const CallResult& CallPipeline::result() const { return state_->result; }
std::vector<std::string> CallPipeline::output_paths() const {
  std::vector<std::string> paths;
  for (std::size_t k = 0; state_->call && k < state_->prep->contract->outputs.size(); ++k)
    paths.push_back(state_->call->output_path(k));
  return paths;
}
const stages::SetupScript& CallPipeline::script() const { return state_->prep->c.script; }

CallResult run_call(const CallRequest& request, docker::Client& client, CallEvents& events,
                    const docker::OutputSink& sink, docker::Cancellation& cancel) {
  CallPipeline pipeline(request, events);
  if (pipeline.prepare()) {
    if (request.mode == CallMode::verify)
      pipeline.verify();
    else if (pipeline.find_done() && pipeline.plan(client))
      pipeline.run(client, sink, cancel);
  }
  return pipeline.result();
}

}  // namespace ce::runner
