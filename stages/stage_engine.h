// Applying setup stages: each `next_stage && ...` step is run once and its
// result committed as an image, found again by its key (stage_key.h).
//
// How an apply goes:
// 1. plan_stages: compute every stage's key and ask the engine, in one call,
//    which keys have images. The last stage with an image ends the longest
//    cached prefix (its image holds every stage before it).
// 2. apply_stages: for each stage after that prefix, in order: take the
//    stage's lock (a file lock per key, so concurrent ce-runs build a stage
//    once), look again for its image (another process may have built it),
//    else start a build container from the previous stage's image if none is
//    running, run the everytime steps since the previous stage, run the
//    stage, commit the container as the stage's image, release the lock.
// 3. The build container is removed at the end, or when a step fails unless
//    the caller keeps it for debugging. A build container whose owning
//    process died (kill -9) is removed by the next apply on the host.
// Committing is atomic in the engine: an image with a stage key label is
// always a finished stage.
#pragma once

#include <functional>
#include <optional>
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "docker/client.h"
#include "stages/setup_script.h"
#include "stages/stage_key.h"

namespace ce::stages {

// Labels on stage images and build containers.
namespace label {
inline constexpr const char* role = "ce-run.role";  // "stage" (image) or "build" (container)
inline constexpr const char* key = "ce-run.stage.key";
inline constexpr const char* number = "ce-run.stage.number";
inline constexpr const char* parent = "ce-run.stage.parent";
inline constexpr const char* computation = "ce-run.computation";
inline constexpr const char* lines = "ce-run.stage.lines";
inline constexpr const char* created = "ce-run.stage.created";
inline constexpr const char* owner = "ce-run.owner";  // host:pid:start-time of a build container's creator
inline constexpr const char* shell = "ce-run.shell";  // the shell steps run with on a stage image: bash | sh
}  // namespace label

enum class StepStatus { cached, built, ran, planned, failed };
const char* to_string(StepStatus status);

struct PlannedStep {
  const Step* step = nullptr;
  std::string key;  // stages: the stage's key; everytime steps: empty
  bool cached = false;
  std::string image_id;  // cached stages: the image that holds them
};

struct StagePlan {
  std::string base_image;
  std::string base_image_id;
  std::vector<PlannedStep> steps;
  std::string final_key;       // the last stage's key; empty without stages
  std::string final_image_id;  // the image to run from, when every stage is cached
  bool complete() const;       // every stage cached
};

// Keys and cache look-up; builds and runs nothing. `inputs.base_image_id`
// must be the base image's content ID.
StagePlan plan_stages(docker::Client& client, const SetupScript& script, const std::string& base_image,
                      const KeyInputs& inputs);

// Progress of an apply or of a step run, for the user's terminal and the
// report.
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  virtual void step_started(const Step& /*step*/, StepStatus /*status*/) {}
  virtual void step_output(const Step& /*step*/, docker::StreamKind /*stream*/, std::string_view /*bytes*/) {}
  virtual void step_finished(const Step& /*step*/, StepStatus /*status*/, double /*seconds*/) {}
  virtual void warning(const std::string& /*message*/) {}
  // The exec that runs a step was created (it starts next).
  virtual void exec_created(const std::string& /*exec_id*/) {}
};

enum class KeepBuildContainer { no, on_failure };

struct ApplyOptions {
  std::string computation;         // the name in labels and tags
  std::string compdir;             // host path, mounted read-only at the same path; empty: none
  std::vector<std::string> env;    // added to every step's environment (COMPDIR, GFSDIR, CE_COMMIT)
  std::string lock_dir = "/var/lib/ce-run/locks";
  KeepBuildContainer keep = KeepBuildContainer::no;
  docker::Labels labels;  // added to stage images and build containers
  // The build container's limits (docker.conf's, under root's host.conf); 0: none.
  std::int64_t memory_bytes = 0;
  std::int64_t pids = 0;
  // Called once the build container runs, before any step: throws to stop
  // (the caller checks what the container mounted from the user's paths).
  std::function<void(const std::string& container)> check_container;
  // Cancelling stops the apply: a lock wait ends, a running step's build
  // container is killed, and apply_stages throws docker::Cancelled (the
  // build container is removed; no stage image is left half-made).
  docker::Cancellation* cancel = nullptr;
};

struct StepResult {
  int index = 0;
  StepStatus status = StepStatus::planned;
  double seconds = 0;
};

struct ApplyResult {
  std::string image_id;  // the last stage's image, or the base image
  std::string final_key;
  std::vector<StepResult> steps;  // one per step; everytime steps after the last stage stay "planned"
  // The build container is removed while the caller goes on; destroying
  // the result waits for that.
  std::future<void> removal;
};

// A step that exited non-zero, during an apply or a run.
class StepFailed : public std::runtime_error {
 public:
  StepFailed(const std::string& message, int exit_code, std::string kept_container)
      : std::runtime_error(message), exit_code_(exit_code), kept_container_(std::move(kept_container)) {}
  int exit_code() const { return exit_code_; }
  const std::string& kept_container() const { return kept_container_; }

 private:
  int exit_code_;
  std::string kept_container_;
};

ApplyResult apply_stages(docker::Client& client, const SetupScript& script, const StagePlan& plan,
                         const ApplyOptions& options, StepObserver& observer);

// The shell steps run with in a container made from `image_id`: bash, or
// the image's sh with a warning when it has no bash. A stage image records
// it in a label; other images are probed in the container. Throws when it
// has neither.
Shell detect_shell(docker::Client& client, const std::string& container, const std::string& image_id,
                   const std::string& image_name, StepObserver& observer);

// Runs one step in a running container as root; returns its exit code. The
// last lines of its output are kept in `tail` for error messages. With a
// supervisor (its path in the container), the step runs under it and ends
// with our connection or `cancel` (docker::Client::run_supervised_exec).
struct Supervision {
  std::string supervisor;
  docker::Cancellation* cancel = nullptr;
};
int run_step(docker::Client& client, const std::string& container, const SetupScript& script, const Step& step,
             Shell shell, const std::vector<std::string>& env, StepObserver& observer, std::string* tail = nullptr,
             const Supervision* supervision = nullptr);

// Runs everytime steps, in order, in a running container: the one loop for
// the build container (stages) and the commit's container (a run). Each is
// announced to `observer`, run as root and reported with its status and
// seconds; returns their results. The first that exits non-zero ends it:
// throws StepFailed saying which step, its last lines and what to do
// (`hint` is added). With a supervision token that is cancelled, throws
// docker::Cancelled.
std::vector<StepResult> run_everytime_steps(docker::Client& client, const std::string& container,
                                            const SetupScript& script, const std::vector<const Step*>& steps,
                                            Shell shell, const std::vector<std::string>& env,
                                            StepObserver& observer, const Supervision* supervision = nullptr,
                                            const std::string& hint = "");

// Removes build containers on this host whose creating process is gone.
void reap_build_containers(docker::Client& client);

// "ce/<name>" made a valid repository name.
std::string stage_repository(const std::string& computation);

// Each stage image is also tagged "ce-run-stage:<key>": found by one
// inspect rather than by listing images by label, which costs the engine a
// scan of every image (about 10 ms). The labels stay the truth: when no
// stage is found by its tag (an earlier ce-run's images, or tags removed by
// hand), the plan lists them by label and tags the last one it finds.
inline constexpr const char* key_repository = "ce-run-stage";

}  // namespace ce::stages
