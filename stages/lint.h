// Warnings about a setup script that parses but will likely not do what its
// author wants. Shown at apply time and by `ce-run lint`.
#pragma once

#include <vector>

#include "stages/setup_script.h"

namespace ce::stages {

// Sorted by line. Each message says what is wrong and what to do.
std::vector<Diagnostic> lint(const SetupScript& script);

}  // namespace ce::stages
