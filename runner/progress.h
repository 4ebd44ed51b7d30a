// What ce-run tells the user on stderr while it works: one line per step as
// it starts and ends, the step's own output in between, warnings.
#pragma once

#include <set>
#include <string>

#include "runner/cli.h"
#include "runner/report.h"
#include "stages/stage_engine.h"

namespace ce::runner {

class TerminalProgress : public stages::StepObserver {
 public:
  // `report`, if given, gets each step's status and duration.
  TerminalProgress(const stages::SetupScript& script, Verbosity verbosity, Report* report = nullptr)
      : script_(script), verbosity_(verbosity), report_(report) {}
  void step_started(const stages::Step& step, stages::StepStatus status) override;
  void step_output(const stages::Step& step, docker::StreamKind stream, std::string_view bytes) override;
  void step_finished(const stages::Step& step, stages::StepStatus status, double seconds) override;
  void warning(const std::string& message) override;

 private:
  const stages::SetupScript& script_;
  Verbosity verbosity_;
  Report* report_;
  std::set<std::string> warned_;  // each warning once per run
};

// "stage 2 (docker-setup.sh:4-9)" or "everytime step 5 (docker-setup.sh:12)"
std::string describe_step(const stages::SetupScript& script, const stages::Step& step);

}  // namespace ce::runner
