// What ce-run tells the user on stderr while a call works: one line per
// step as it starts and ends, the step's own output in between, notes and
// warnings (each warning once).
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "runner/call.h"
#include "runner/cli/cli.h"

namespace ce::runner {

class TerminalEvents : public CallEvents {
 public:
  TerminalEvents(const stages::SetupScript& script, Verbosity verbosity) : script_(&script), verbosity_(verbosity) {}
  // The script's places are learnt from diagnostics(), which a call sends
  // before any step.
  explicit TerminalEvents(Verbosity verbosity) : verbosity_(verbosity) {}

  void step_started(const stages::Step& step, stages::StepStatus status) override;
  void step_output(const stages::Step& step, docker::StreamKind stream, std::string_view bytes) override;
  void step_finished(const stages::Step& step, stages::StepStatus status, double seconds) override;
  void warning(const std::string& message) override;
  void note(Level level, const std::string& text) override;
  void diagnostics(const stages::SetupScript& script, const std::vector<stages::Diagnostic>& warnings) override;

 private:
  std::string describe(const stages::Step& step) const;
  const stages::SetupScript* script_ = nullptr;
  Verbosity verbosity_;
  std::mutex mutex_;
  std::set<std::string> warned_;
};

// "docker-setup.sh:3:1: warning: ..."
std::string format_diagnostic(const stages::SetupScript& script, const stages::Diagnostic& d);

}  // namespace ce::runner
