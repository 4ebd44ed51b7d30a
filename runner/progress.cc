#include "runner/progress.h"

#include <cstdio>
#include <spdlog/spdlog.h>

namespace ce::runner {

std::string describe_step(const stages::SetupScript& script, const stages::Step& step) {
  std::string what = step.kind == stages::StepKind::stage ? "stage " + std::to_string(step.stage_number)
                                                          : "everytime step " + std::to_string(step.index);
  return what + " (" + script.lines_of(step) + ")";
}

void TerminalProgress::step_started(const stages::Step& step, stages::StepStatus status) {
  spdlog::info("{} {}", describe_step(script_, step),
               status == stages::StepStatus::built ? "building..." : "running...");
}

void TerminalProgress::step_output(const stages::Step&, docker::StreamKind, std::string_view bytes) {
  // Setup output goes to stderr: stdout belongs to the computation.
  if (verbosity_ == Verbosity::quiet) return;
  std::fwrite(bytes.data(), 1, bytes.size(), stderr);
  std::fflush(stderr);
}

void TerminalProgress::step_finished(const stages::Step& step, stages::StepStatus status, double seconds) {
  if (report_) {
    for (auto& s : report_->steps) {
      if (s.index != step.index) continue;
      s.status = stages::to_string(status);
      s.seconds = seconds;
    }
  }
  switch (status) {
    case stages::StepStatus::cached:
      spdlog::info("{} cached", describe_step(script_, step));
      break;
    case stages::StepStatus::built:
    case stages::StepStatus::ran:
      spdlog::info("{} {} in {:.1f} s", describe_step(script_, step), stages::to_string(status), seconds);
      break;
    default:
      break;  // a failure is reported by the error that follows
  }
}

void TerminalProgress::warning(const std::string& message) {
  if (warned_.insert(message).second) spdlog::warn("warning: {}", message);
}

}  // namespace ce::runner
