// The job service's JSON API, version 1 (docs/api.md): the requests it
// takes, read strictly (a malformed body, an unknown field or a wrong type
// is an ApiError with the field's place and the fix, never a crash), and
// the one place its answers' JSON is spelt. No I/O: tests/fuzz reads
// request bodies through these functions.
#pragma once

#include <Poco/JSON/Object.h>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "runner/service/store.h"

namespace ce::runner::service {

// An answer other than 2xx: the HTTP status and what to say.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// One input of a run: a path (absolute, or relative to the GFS) or a file
// in the request itself.
struct InputSpec {
  std::string path;      // a path input
  std::string name;      // an uploaded one: its file name
  std::string content;   // and its bytes
  bool uploaded() const { return !name.empty(); }
};

// POST /v1/runs
struct RunSpec {
  std::string repository;  // absolute
  std::string path;        // in the repository, normalised ("" for its top)
  std::string commit;      // 4 to 40 hex digits, or ""
  std::string branch;      // a branch name, or ""
  std::vector<InputSpec> inputs;
  int jobs = 0;            // a task: its calls at once (0: as many as the service allows)
  bool fail_fast = false;  // a task: stop at the first failed call
  bool allow_dirty = false;
};

// The body of POST /v1/runs; throws ApiError 400 (413 for an upload over
// `max_upload` bytes in all).
RunSpec parse_run_request(std::string_view body, std::size_t max_upload);

// The request as the store keeps it (uploads already saved: they are
// paths by then) and reads back for a restart.
std::string run_spec_json(const RunSpec& spec);
RunSpec run_spec_from_json(const std::string& text);

// POST /v1/hooks/commit
struct CommitHook {
  std::string repository;  // a configured repository's name or path
  std::string ref;         // "refs/heads/main" (or a branch name)
  std::string commit;      // 40 hex digits
};
CommitHook parse_commit_hook(std::string_view body);

// A query string's parameters ("a=1&b=x%20y"); throws ApiError 400 for a
// parameter not in `known`, a repeated one or bad escaping.
std::map<std::string, std::string> parse_query(std::string_view query, const std::vector<std::string>& known);

// A non-negative integer parameter; throws ApiError 400 naming it.
std::int64_t query_integer(const std::map<std::string, std::string>& query, const std::string& name,
                           std::int64_t fallback, std::int64_t max);

// JSON views of the store's records.
Poco::JSON::Object::Ptr run_summary(const RunRecord& run);  // for lists
Poco::JSON::Object::Ptr run_detail(const RunRecord& run);   // with its calls and outputs
Poco::JSON::Object::Ptr error_object(int status, const std::string& message);
std::string json_text(const Poco::JSON::Object::Ptr& object);

}  // namespace ce::runner::service
