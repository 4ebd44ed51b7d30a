// libFuzzer target: the job service's request parsing (POST /v1/runs and
// /v1/hooks/commit bodies, query strings), and the JSON the store keeps of
// an accepted request read back. Any input must be accepted or refused with
// an ApiError of status 4xx: no crash, hang or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/service/api.h"

using namespace ce::runner::service;

namespace {

void refused_properly(const ApiError& e) {
  if (e.status() < 400 || e.status() > 499 || std::string_view(e.what()).empty()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    RunSpec spec = parse_run_request(text, 4096);
    // What is kept of it reads back as the same request.
    for (auto& input : spec.inputs)
      if (input.uploaded()) input = InputSpec{"/uploads/" + input.name, "", ""};
    RunSpec back = run_spec_from_json(run_spec_json(spec));
    if (back.repository != spec.repository || back.path != spec.path || back.inputs.size() != spec.inputs.size())
      __builtin_trap();
  } catch (const ApiError& e) {
    refused_properly(e);
  }
  try {
    parse_commit_hook(text);
  } catch (const ApiError& e) {
    refused_properly(e);
  }
  try {
    auto query = parse_query(text, {"state", "limit", "before", "call", "offset", "follow"});
    query_integer(query, "limit", 50, 1000);
  } catch (const ApiError& e) {
    refused_properly(e);
  }
  return 0;
}
