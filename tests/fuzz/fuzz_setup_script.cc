// libFuzzer target: docker-setup.sh parsing, classification, step programs
// and lint. Any input must give a result or a ScriptError: no crash, hang or
// sanitizer report. Built and run by scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stages/lint.h"
#include "stages/setup_script.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto script = ce::stages::parse_setup_script(text, "docker-setup.sh");
    for (const auto& step : script.steps) {
      auto program = ce::stages::step_program(script, step);
      if (program.size() < text.size()) __builtin_trap();  // a program keeps every line
    }
    ce::stages::lint(script);
  } catch (const ce::stages::ScriptError&) {
  }
  return 0;
}
