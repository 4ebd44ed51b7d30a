#include "stages/stage_engine.h"

#include <chrono>
#include <csignal>
#include <ctime>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "stages/build_network.h"
#include "stages/file_lock.h"
#include "stages/host_files.h"

namespace ce::stages {

namespace {

// Bigger programs would not fit in one exec argument (MAX_ARG_STRLEN).
constexpr std::size_t max_program_size = 120 * 1024;
constexpr std::size_t tail_lines = 15;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}


// Field 22 of /proc/PID/stat: when the process started, in clock ticks since
// boot. With the pid it names a process uniquely across pid reuse.
std::string process_start_time(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return {};
}

std::string owner_id() {
  long pid = static_cast<long>(::getpid());
  return host_name() + ":" + std::to_string(pid) + ":" + process_start_time(pid);
}

// How many processes run in a container. On a local engine its cgroup
// lists them (cgroup v1 or v2, the cgroupfs or systemd driver): a file read
// instead of GET /top, which has the engine run ps (about 13 ms).
// pids.current counts the processes of child cgroups too. Any doubt
// answers "many", which only costs a paused commit.
std::size_t process_count(docker::Client& client, const std::string& id) {
  if (client.address().kind == docker::EngineAddress::Kind::unix_socket) {
    for (const std::string& dir : {"/sys/fs/cgroup/pids/docker/" + id, "/sys/fs/cgroup/docker/" + id,
                                   "/sys/fs/cgroup/system.slice/docker-" + id + ".scope",
                                   "/sys/fs/cgroup/pids/system.slice/docker-" + id + ".scope"}) {
      std::ifstream current(dir + "/pids.current");
      std::size_t n = 0;
      if (current >> n && n > 0) return n;
    }
  }
  try {
    return client.container_process_count(id);
  } catch (const docker::EngineError&) {
    return std::numeric_limits<std::size_t>::max();
  }
}

// Keeps the last lines of a step's output for its error message.
class Tail {
 public:
  void add(std::string_view bytes) {
    for (char c : bytes) {
      if (c == '\n') {
        push();
      } else if (current_.size() < 500) {
        current_ += c;
      }
    }
  }
  std::string text() {
    if (!current_.empty()) push();
    std::string out;
    for (const auto& l : lines_) out += "  | " + l + "\n";
    return out;
  }

 private:
  void push() {
    lines_.push_back(std::move(current_));
    current_.clear();
    if (lines_.size() > tail_lines) lines_.pop_front();
  }
  std::deque<std::string> lines_;
  std::string current_;
};

// The build container; removed when the guard goes unless kept.
class BuildContainer {
 public:
  BuildContainer(docker::Client& client) : client_(client) {}
  ~BuildContainer() { remove(); }
  void remove() {
    if (id_.empty()) return;
    try {
      client_.remove_container(id_, docker::Force::yes);
    } catch (const std::exception&) {
      // The next apply's reaper takes it.
    }
    id_.clear();
  }
  std::string release() { return std::exchange(id_, std::string()); }
  const std::string& id() const { return id_; }
  const std::string& image() const { return image_; }
  void set(std::string id, std::string image) {
    id_ = std::move(id);
    image_ = std::move(image);
  }
  Shell shell = Shell::bash;

 private:
  docker::Client& client_;
  std::string id_, image_;
};

std::string lines_label(const Step& step) {
  return step.first_line == step.last_line ? std::to_string(step.first_line)
                                           : std::to_string(step.first_line) + "-" + std::to_string(step.last_line);
}

std::string describe(const SetupScript& script, const Step& step) {
  std::string what = step.kind == StepKind::stage ? "stage " + std::to_string(step.stage_number)
                                                  : "everytime step " + std::to_string(step.index);
  return what + " (" + script.lines_of(step) + ")";
}

}  // namespace

const char* to_string(StepStatus status) {
  switch (status) {
    case StepStatus::cached: return "cached";
    case StepStatus::built: return "built";
    case StepStatus::ran: return "ran";
    case StepStatus::planned: return "planned";
    case StepStatus::failed: return "failed";
  }
  return "?";
}

bool StagePlan::complete() const {
  for (const auto& s : steps)
    if (s.step->kind == StepKind::stage && !s.cached) return false;
  return true;
}

std::string stage_repository(const std::string& computation) {
  std::string name;
  for (char c : computation) {
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '.' || lower == '_' ||
              lower == '-';
    name += ok ? lower : '-';
  }
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.back()))) name.pop_back();
  if (name.empty()) name = "computation";
  return "ce/" + name.substr(0, 100);
}

namespace {
// The image tagged with `key`, if it is that stage's.
std::optional<std::string> find_tagged_stage(docker::Client& client, const std::string& key) {
  auto image = client.find_image(std::string(key_repository) + ":" + key);
  if (!image) return std::nullopt;
  auto it = image->labels.find(label::key);
  if (it == image->labels.end() || it->second != key) return std::nullopt;
  return image->id;
}
}  // namespace

StagePlan plan_stages(docker::Client& client, const SetupScript& script, const std::string& base_image,
                      const KeyInputs& inputs) {
  StagePlan plan;
  plan.base_image = base_image;
  plan.base_image_id = inputs.base_image_id;
  auto keys = stage_keys(script, inputs);

  // The last stage that has an image holds all before it: look from the
  // end, by tag; only when no tag is found, list the stage images by label.
  std::map<std::string, std::string> images;  // key -> image id
  for (auto key = keys.rbegin(); key != keys.rend(); ++key) {
    if (auto id = find_tagged_stage(client, *key)) {
      images.emplace(*key, *id);
      break;
    }
  }
  const bool found_by_label = images.empty() && !keys.empty();
  if (found_by_label) {
    for (const auto& image : client.list_images({{label::role, "stage"}, {label::key, ""}})) {
      auto it = image.labels.find(label::key);
      if (it != image.labels.end()) images.emplace(it->second, image.id);
    }
  }
  int last_cached = 0;  // stage number
  std::size_t k = 0;
  for (const auto& step : script.steps) {
    PlannedStep p;
    p.step = &step;
    if (step.kind == StepKind::stage) {
      p.key = keys[k++];
      if (auto it = images.find(p.key); it != images.end()) {
        last_cached = step.stage_number;
        p.image_id = it->second;
      }
    }
    plan.steps.push_back(p);
  }
  // Found by label only (an earlier ce-run's image, or its tag removed):
  // tag it, so the next plan finds it with one request.
  for (const auto& p : plan.steps) {
    if (!found_by_label || p.step->kind != StepKind::stage || p.step->stage_number != last_cached) continue;
    try {
      client.tag_image(p.image_id, key_repository, p.key);
    } catch (const docker::EngineError&) {
      // Only slower next time.
    }
  }
  plan.final_image_id = inputs.base_image_id;
  for (auto& p : plan.steps) {
    if (p.step->kind != StepKind::stage) continue;
    p.cached = p.step->stage_number <= last_cached;
    plan.final_key = p.key;
    if (p.step->stage_number == last_cached) plan.final_image_id = p.image_id;
  }
  if (!plan.complete()) plan.final_image_id.clear();
  return plan;
}

Shell detect_shell(docker::Client& client, const std::string& container, const std::string& image_id,
                   const std::string& image_name, StepObserver& observer) {
  auto no_bash = [&] {
    observer.warning(image_name + " has no bash: docker-setup.sh steps run with its /bin/sh instead, where "
                                  "bash-only syntax ([[ ]], arrays, $'...') fails; use an image with bash to "
                                  "avoid surprises");
    return Shell::posix_sh;
  };
  if (auto image = client.find_image(image_id)) {
    auto recorded = image->labels.find(label::shell);
    if (recorded != image->labels.end() && recorded->second == "bash") return Shell::bash;
    if (recorded != image->labels.end() && recorded->second == "sh") return no_bash();
  }
  docker::ExecSpec probe;
  probe.cmd = {"sh", "-c", "echo sh-ok; command -v bash >/dev/null 2>&1"};
  probe.user = "0";
  std::string out;
  int code = client.run_exec(container, probe, [&](docker::StreamKind, std::string_view b) { out.append(b); });
  if (code == 0) return Shell::bash;
  if (out.rfind("sh-ok", 0) == 0) return no_bash();
  docker::ExecSpec bash_only;
  bash_only.cmd = {"bash", "-c", "true"};
  bash_only.user = "0";
  if (client.run_exec(container, bash_only, [](docker::StreamKind, std::string_view) {}) == 0) return Shell::bash;
  throw std::runtime_error(image_name + " has neither bash nor sh: docker-setup.sh steps need a shell; use "
                                        "an image that has bash");
}

int run_step(docker::Client& client, const std::string& container, const SetupScript& script, const Step& step,
             Shell shell, const std::vector<std::string>& env, StepObserver& observer, std::string* tail,
             const Supervision* supervision) {
  std::string program = step_program(script, step);
  if (program.size() > max_program_size)
    throw std::runtime_error(script.origin + " is too large to run (" + std::to_string(program.size() / 1024) +
                             " KiB; at most " + std::to_string(max_program_size / 1024) +
                             " KiB): move long parts into scripts the steps call");
  docker::ExecSpec spec;
  spec.cmd = {shell == Shell::bash ? "bash" : "sh", "-c", program, script.origin};
  spec.env = env;
  spec.env.push_back("CE_STAGE=" + std::to_string(step.stage_number));
  spec.user = "0";
  Tail last;
  auto sink = [&](docker::StreamKind stream, std::string_view bytes) {
    last.add(bytes);
    observer.step_output(step, stream, bytes);
  };
  auto created = [&](const std::string& exec_id) { observer.exec_created(exec_id); };
  int code = supervision ? client.run_supervised_exec(container, spec, supervision->supervisor, sink, created,
                                                      supervision->cancel)
                         : client.run_exec(container, spec, sink, created);
  if (tail) *tail = last.text();
  return code;
}

std::vector<StepResult> run_everytime_steps(docker::Client& client, const std::string& container,
                                            const SetupScript& script, const std::vector<const Step*>& steps,
                                            Shell shell, const std::vector<std::string>& env,
                                            StepObserver& observer, const Supervision* supervision,
                                            const std::string& hint) {
  const docker::Cancellation* cancel = supervision ? supervision->cancel : nullptr;
  std::vector<StepResult> results;
  for (const Step* step : steps) {
    if (cancel && cancel->cancelled()) throw docker::Cancelled();
    observer.step_started(*step, StepStatus::ran);
    auto start = std::chrono::steady_clock::now();
    std::string tail;
    int code = run_step(client, container, script, *step, shell, env, observer, &tail, supervision);
    if (cancel && cancel->cancelled()) throw docker::Cancelled();
    StepResult result{step->index, code == 0 ? StepStatus::ran : StepStatus::failed, seconds_since(start)};
    observer.step_finished(*step, result.status, result.seconds);
    if (code != 0)
      throw StepFailed(describe(script, *step) + " failed with exit code " + std::to_string(code) +
                           (tail.empty() ? " and printed nothing" : "; its last lines:\n" + tail) +
                           "fix it and run again" + hint,
                       code, {});
    results.push_back(result);
  }
  return results;
}

void reap_build_containers(docker::Client& client) {
  std::string host = host_name();
  for (const auto& c : client.list_containers({{label::role, "build"}})) {
    auto it = c.labels.find(label::owner);
    if (it == c.labels.end()) continue;
    // host:pid:start
    const std::string& owner = it->second;
    auto first = owner.find(':');
    auto second = owner.find(':', first == std::string::npos ? 0 : first + 1);
    if (first == std::string::npos || second == std::string::npos || owner.substr(0, first) != host) continue;
    long pid = std::atol(owner.substr(first + 1, second - first - 1).c_str());
    std::string start = owner.substr(second + 1);
    bool alive = pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0 && process_start_time(pid) == start;
    if (alive) continue;
    try {
      client.remove_container(c.id, docker::Force::yes);
    } catch (const docker::EngineError& e) {
      if (e.kind() != docker::ErrorKind::no_such_container) throw;
    }
  }
}

ApplyResult apply_stages(docker::Client& client, const SetupScript& script, const StagePlan& plan,
                         const ApplyOptions& options, StepObserver& observer) {
  ApplyResult result;
  result.final_key = plan.final_key;
  for (const auto& p : plan.steps) result.steps.push_back({p.step->index, StepStatus::planned, 0});

  // Where the cached prefix ends.
  std::string image = plan.base_image_id;
  std::size_t last_cached = plan.steps.size();  // index into steps; size(): none
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    if (plan.steps[i].step->kind == StepKind::stage && plan.steps[i].cached) {
      last_cached = i;
      image = plan.steps[i].image_id;
    }
  }
  std::size_t last_stage = plan.steps.size();
  for (std::size_t i = 0; i < plan.steps.size(); ++i)
    if (plan.steps[i].step->kind == StepKind::stage) last_stage = i;
  for (std::size_t i = 0; last_cached != plan.steps.size() && i <= last_cached; ++i) {
    result.steps[i].status = StepStatus::cached;
    observer.step_finished(*plan.steps[i].step, StepStatus::cached, 0);
  }
  if (last_stage == plan.steps.size() || (last_cached != plan.steps.size() && last_cached == last_stage)) {
    result.image_id = image;
    return result;
  }

  reap_build_containers(client);
  // While a step runs, cancelling kills its build container, which ends the
  // step; the container is removed on the way out.
  auto kill_on_cancel = [&](const std::string& id) {
    std::optional<docker::Cancellation::Registration> registration;
    if (options.cancel)
      registration.emplace(options.cancel->on_cancel([&client, id] {
        try {
          client.kill_container(id);
        } catch (const std::exception&) {
          // Gone already: the step has ended.
        }
      }));
    return registration;
  };
  // Declared first, so the namespace stays ours until the container is gone.
  std::unique_ptr<BuildNetwork> network;
  BuildContainer container(client);
  std::vector<std::size_t> everytime_since_stage;
  std::string parent_key = last_cached == plan.steps.size() ? plan.base_image_id : plan.steps[last_cached].key;
  std::size_t first = last_cached == plan.steps.size() ? 0 : last_cached + 1;

  // A failed step: the build container is kept when the caller asks.
  auto keep_or_throw = [&](std::string message, int code) {
    std::string kept;
    if (options.keep == KeepBuildContainer::on_failure) kept = container.release();
    if (!kept.empty()) message += "; the build container " + kept.substr(0, 12) + " is kept for inspection";
    throw StepFailed(message, code, kept);
  };

  for (std::size_t i = first; i <= last_stage; ++i) {
    const PlannedStep& planned = plan.steps[i];
    const Step& step = *planned.step;
    if (step.kind == StepKind::everytime) {
      everytime_since_stage.push_back(i);
      continue;
    }
    if (options.cancel && options.cancel->cancelled()) throw docker::Cancelled();
    FileLock lock(options.lock_dir + "/stage-" + planned.key + ".lock", Wait::yes, options.cancel);
    // Built meanwhile by another process? (It tagged the image before it
    // let the lock go.)
    if (auto built = find_tagged_stage(client, planned.key)) {
      image = *built;
      container.remove();
      for (auto e : everytime_since_stage) result.steps[e].status = StepStatus::cached;
      everytime_since_stage.clear();
      result.steps[i].status = StepStatus::cached;
      observer.step_finished(step, StepStatus::cached, 0);
      parent_key = planned.key;
      continue;
    }
    if (container.id().empty() || container.image() != image) {
      container.remove();
      docker::ContainerSpec spec;
      spec.image = image;
      spec.entrypoint = {"sleep"};
      spec.cmd = {"2147483647"};
      spec.init = true;
      spec.labels = options.labels;
      spec.labels[label::role] = "build";
      spec.labels[label::owner] = owner_id();
      spec.labels[label::computation] = options.computation;
      // A container kept for inspection outlives the build: it gets a
      // namespace of its own.
      if (options.keep == KeepBuildContainer::no) {
        if (!network) network = std::make_unique<BuildNetwork>(client, options.lock_dir, plan.base_image_id);
        spec.network_mode = network->network_mode();
      }
      if (!options.compdir.empty())
        spec.binds.push_back({options.compdir, options.compdir, docker::Access::read_only});
      spec.memory_bytes = options.memory_bytes;
      spec.pids_limit = options.pids;
      container.set(client.create_container(spec), image);
      client.start_container(container.id());
      if (options.check_container) options.check_container(container.id());
      container.shell = detect_shell(client, container.id(), image, plan.base_image, observer);
    }
    std::vector<const Step*> every;
    for (auto e : everytime_since_stage) every.push_back(plan.steps[e].step);
    try {
      auto stopping = kill_on_cancel(container.id());
      auto ran = run_everytime_steps(client, container.id(), script, every, container.shell, options.env, observer);
      if (options.cancel && options.cancel->cancelled()) throw docker::Cancelled();
      for (std::size_t k = 0; k < ran.size(); ++k) {
        result.steps[everytime_since_stage[k]].status = ran[k].status;
        result.steps[everytime_since_stage[k]].seconds = ran[k].seconds;
      }
    } catch (const StepFailed& failed) {
      if (options.cancel && options.cancel->cancelled()) throw docker::Cancelled();
      keep_or_throw(failed.what(), failed.exit_code());
    }
    everytime_since_stage.clear();

    observer.step_started(step, StepStatus::built);
    auto start = std::chrono::steady_clock::now();
    std::string tail;
    int code = 0;
    {
      auto stopping = kill_on_cancel(container.id());
      code = run_step(client, container.id(), script, step, container.shell, options.env, observer, &tail);
    }
    if (options.cancel && options.cancel->cancelled()) throw docker::Cancelled();
    if (code != 0) {
      result.steps[i].status = StepStatus::failed;
      result.steps[i].seconds = seconds_since(start);
      observer.step_finished(step, StepStatus::failed, result.steps[i].seconds);
      keep_or_throw(describe(script, step) + " failed with exit code " + std::to_string(code) +
                        (tail.empty() ? " and printed nothing" : "; its last lines:\n" + tail) +
                        (step.stage_number > 1 ? "the stages before it stay cached; fix it and run again"
                                               : "fix it and run again"),
                    code);
    }
    auto base = client.inspect_image(plan.base_image_id);
    docker::CommitSpec commit;
    commit.container = container.id();
    commit.repo = stage_repository(options.computation);
    commit.tag = "stage-" + std::to_string(step.stage_number);
    commit.comment = "ce-run: " + describe(script, step);
    commit.labels = {{label::role, "stage"},
                     {label::key, planned.key},
                     {label::number, std::to_string(step.stage_number)},
                     {label::parent, parent_key},
                     {label::computation, options.computation},
                     {label::lines, lines_label(step)},
                     {label::created, utc_now()},
                     {label::shell, container.shell == Shell::bash ? "bash" : "sh"},
                     {label::owner, ""}};  // the build container's owner is not the image's
    commit.labels.insert(options.labels.begin(), options.labels.end());
    // Give the image back the base image's command, not the build container's sleep.
    if (!base.entrypoint.empty()) commit.entrypoint = base.entrypoint;
    commit.cmd = base.cmd;
    // Init and sleep alone write nothing: no need to freeze them (pausing
    // costs a third of a commit). A process the stage left may write, so
    // then the snapshot is taken paused.
    commit.pause = process_count(client, container.id()) > 2;
    image = client.commit(commit);
    client.tag_image(image, key_repository, planned.key);  // before the lock goes: see "built meanwhile"
    container.set(container.release(), image);  // the container now holds this stage's state
    result.steps[i].status = StepStatus::built;
    result.steps[i].seconds = seconds_since(start);
    observer.step_finished(step, StepStatus::built, result.steps[i].seconds);
    parent_key = planned.key;
  }
  result.image_id = image;
  if (!container.id().empty()) {
    // The container is done with: remove it in the background (with a
    // client of its own, as the caller's may go first), keeping its network
    // namespace ours until it is gone.
    result.removal = std::async(std::launch::async, [address = client.address(), id = container.release(),
                                                     held = std::move(network)]() mutable {
      try {
        docker::Client(address).remove_container(id, docker::Force::yes);
      } catch (const std::exception&) {
        // The next apply's reaper takes it.
      }
      held.reset();
    });
  }
  return result;
}

}  // namespace ce::stages
