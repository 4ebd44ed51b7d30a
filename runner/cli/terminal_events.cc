#include "runner/cli/terminal_events.h"

#include <cstdio>
#include <spdlog/spdlog.h>

namespace ce::runner {

std::string format_diagnostic(const stages::SetupScript& script, const stages::Diagnostic& d) {
  return script.origin + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": warning: " + d.message;
}

// "stage 2 (docker-setup.sh:4-9)" or "everytime step 5 (docker-setup.sh:12)"
std::string TerminalEvents::describe(const stages::Step& step) const {
  std::string what = step.kind == stages::StepKind::stage ? "stage " + std::to_string(step.stage_number)
                                                          : "everytime step " + std::to_string(step.index);
  return script_ ? what + " (" + script_->lines_of(step) + ")" : what;
}

void TerminalEvents::step_started(const stages::Step& step, stages::StepStatus status) {
  spdlog::info("{} {}", describe(step), status == stages::StepStatus::built ? "building..." : "running...");
}

void TerminalEvents::step_output(const stages::Step&, docker::StreamKind, std::string_view bytes) {
  // Setup output goes to stderr: stdout belongs to the computation.
  if (verbosity_ == Verbosity::quiet) return;
  std::fwrite(bytes.data(), 1, bytes.size(), stderr);
  std::fflush(stderr);
}

void TerminalEvents::step_finished(const stages::Step& step, stages::StepStatus status, double seconds) {
  switch (status) {
    case stages::StepStatus::cached:
      spdlog::info("{} cached", describe(step));
      break;
    case stages::StepStatus::built:
    case stages::StepStatus::ran:
      spdlog::info("{} {} in {:.1f} s", describe(step), stages::to_string(status), seconds);
      break;
    default:
      break;  // a failure is reported by the error that follows
  }
}

void TerminalEvents::warning(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (warned_.insert(message).second) spdlog::warn("warning: {}", message);
}

void TerminalEvents::note(Level level, const std::string& text) {
  switch (level) {
    case Level::debug: spdlog::debug("{}", text); break;
    case Level::info: spdlog::info("{}", text); break;
    case Level::warning: spdlog::warn("warning: {}", text); break;
  }
}

void TerminalEvents::diagnostics(const stages::SetupScript& script, const std::vector<stages::Diagnostic>& warnings) {
  script_ = &script;
  for (const auto& w : warnings) spdlog::warn("{}", format_diagnostic(script, w));
}

}  // namespace ce::runner
