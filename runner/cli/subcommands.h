// ce-run status | gc | why | shell | fleet status (docs/cli.md) | serve
// (docs/service.md).
#pragma once

#include "runner/cli/cli.h"

namespace ce::runner {

int run_status(const Command& command);
int run_gc(const Command& command);
int run_why(const Command& command);
int run_shell(const Command& command);
int run_fleet_status(const Command& command);
int run_serve(const Command& command);  // serve_command.cc

}  // namespace ce::runner
