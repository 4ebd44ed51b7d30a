#include "runner/service/api.h"

#include <Poco/Base64Decoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/URI.h>
#include <cctype>
#include <cmath>
#include <ctime>
#include <sstream>

namespace ce::runner::service {

using Poco::JSON::Array;
using Poco::JSON::Object;
using Poco::Dynamic::Var;

namespace {

constexpr int max_depth = 16;

[[noreturn]] void bad(const std::string& message) { throw ApiError(400, message); }

// A body nested deeper than any request of ours is refused before the
// parser builds (and, recursively, frees) it.
void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) bad("the body nests deeper than " + std::to_string(max_depth) + " levels; no request of this API does");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

// `text` as a message may show it (control characters and bytes beyond
// ASCII escaped, so the answer is valid UTF-8 whatever came; cut short).
std::string shown(std::string_view text) {
  std::string out;
  for (unsigned char c : text.substr(0, 80)) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 80) out += "...";
  return out;
}

Object::Ptr parse_object(std::string_view body, const char* what) {
  if (body.empty()) bad("the request has no body; it takes a JSON object: " + std::string(what));
  check_depth(body);
  Var parsed;
  try {
    Poco::JSON::Parser parser;
    parsed = parser.parse(std::string(body));
  } catch (const Poco::Exception& e) {
    bad("the body is not JSON (" + shown(e.message().empty() ? e.displayText() : e.message()) +
        "); it takes a JSON object: " + what);
  } catch (const std::exception& e) {
    bad("the body is not JSON (" + shown(e.what()) + "); it takes a JSON object: " + what);
  }
  if (parsed.type() != typeid(Object::Ptr)) bad(std::string("the body must be a JSON object: ") + what);
  return parsed.extract<Object::Ptr>();
}

const char* type_name(const Var& v) {
  if (v.isEmpty()) return "null";
  if (v.type() == typeid(Object::Ptr)) return "an object";
  if (v.type() == typeid(Array::Ptr)) return "an array";
  if (v.isString()) return "a string";
  if (v.isBoolean()) return "a boolean";
  if (v.isNumeric()) return "a number";
  return "another type";
}

void check_fields(const Object::Ptr& o, const std::string& where, const std::vector<std::string>& known) {
  for (const auto& [key, value] : *o) {
    bool found = false;
    for (const auto& k : known) found = found || k == key;
    if (found) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    bad("unknown field '" + shown(key) + "' in " + where + "; it takes " + list);
  }
}

std::string string_field(const Object::Ptr& o, const std::string& key, const std::string& where) {
  if (!o->has(key)) return {};
  Var v = o->get(key);
  if (!v.isString()) bad(where + "." + key + " must be a string, not " + type_name(v));
  std::string s = v.convert<std::string>();
  if (s.find('\0') != std::string::npos) bad(where + "." + key + " holds a NUL character");
  return s;
}

bool bool_field(const Object::Ptr& o, const std::string& key, const std::string& where) {
  if (!o->has(key)) return false;
  Var v = o->get(key);
  if (!v.isBoolean()) bad(where + "." + key + " must be true or false, not " + type_name(v));
  return v.convert<bool>();
}

std::int64_t integer_field(const Object::Ptr& o, const std::string& key, const std::string& where, std::int64_t min,
                           std::int64_t max) {
  if (!o->has(key)) return 0;
  Var v = o->get(key);
  if (!v.isNumeric() || v.isBoolean()) bad(where + "." + key + " must be an integer, not " + type_name(v));
  double d = v.convert<double>();
  if (d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max))
    bad(where + "." + key + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return static_cast<std::int64_t>(d);
}

bool has_dot_dot(const std::string& path) {
  for (std::size_t at = 0; (at = path.find("..", at)) != std::string::npos; ++at)
    if ((at == 0 || path[at - 1] == '/') && (at + 2 == path.size() || path[at + 2] == '/')) return true;
  return false;
}

// "a//b/./c/" -> "a/b/c"
std::string normal(const std::string& path) {
  std::string out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
    start = end + 1;
  }
  return out;
}

bool hex(const std::string& s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// A ref name as git check-ref-format allows (the common cases refused).
bool valid_ref(const std::string& ref) {
  if (ref.empty() || ref.size() > 255 || ref[0] == '/' || ref[0] == '-' || ref.back() == '/' || ref.back() == '.')
    return false;
  if (ref.find("..") != std::string::npos || ref.find("//") != std::string::npos || ref.find("@{") != std::string::npos)
    return false;
  for (unsigned char c : ref)
    if (c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' ||
        c == '\\')
      return false;
  return true;
}

std::string decode_base64(const std::string& text, const std::string& where) {
  for (char c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=' && c != '\n' && c != '\r')
      bad(where + " is not base64 (it holds '" + shown(std::string(1, c)) + "')");
  try {
    std::istringstream in(text);
    Poco::Base64Decoder decoder(in);
    std::ostringstream out;
    out << decoder.rdbuf();
    return out.str();
  } catch (const Poco::Exception& e) {
    bad(where + " is not base64: " + e.displayText());
  }
}

std::string rfc3339(double seconds) {
  if (seconds <= 0) return {};
  std::time_t whole = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&whole, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>((seconds - static_cast<double>(whole)) * 1000));
  return text;
}

Var json_or_null(const std::string& text) {
  if (text.empty()) return Var();
  try {
    Poco::JSON::Parser parser;
    return parser.parse(text);
  } catch (const std::exception&) {
    return Var(text);
  }
}

const char* const run_request_fields = "{\"repository\": \"/srv/git/wordfreq\", \"path\": \"examples/wordfreq\", "
                                       "\"inputs\": [\"inputs/text.txt\"]}";

}  // namespace

RunSpec parse_run_request(std::string_view body, std::size_t max_upload) {
  Object::Ptr o = parse_object(body, run_request_fields);
  check_fields(o, "the request", {"repository", "path", "commit", "branch", "inputs", "jobs", "fail_fast", "allow_dirty"});
  RunSpec spec;
  spec.repository = string_field(o, "repository", "$");
  if (spec.repository.empty()) bad("$.repository is missing: name the repository's directory on this host, e.g. " +
                                   std::string(run_request_fields));
  if (spec.repository[0] != '/') bad("$.repository must be an absolute path, not \"" + shown(spec.repository) + "\"");
  if (has_dot_dot(spec.repository)) bad("$.repository must not have a '..' part");
  std::string path = string_field(o, "path", "$");
  if (!path.empty() && path[0] == '/') bad("$.path is a directory in the repository: relative, not \"" + shown(path) + "\"");
  if (has_dot_dot(path)) bad("$.path must not have a '..' part: it stays in the repository");
  spec.path = normal(path);
  spec.commit = string_field(o, "commit", "$");
  if (!spec.commit.empty() && (spec.commit.size() < 4 || spec.commit.size() > 40 || !hex(spec.commit)))
    bad("$.commit must be a commit ID (4 to 40 hex digits), not \"" + shown(spec.commit) + "\"");
  spec.branch = string_field(o, "branch", "$");
  if (!spec.branch.empty() && !valid_ref(spec.branch)) bad("$.branch is not a branch name: \"" + shown(spec.branch) + "\"");
  if (!spec.commit.empty() && !spec.branch.empty()) bad("give $.commit or $.branch, not both");
  spec.jobs = static_cast<int>(integer_field(o, "jobs", "$", 1, 4096));
  spec.fail_fast = bool_field(o, "fail_fast", "$");
  spec.allow_dirty = bool_field(o, "allow_dirty", "$");
  if (o->has("inputs")) {
    Var v = o->get("inputs");
    if (v.type() != typeid(Array::Ptr)) bad("$.inputs must be an array, not " + std::string(type_name(v)));
    Array::Ptr a = v.extract<Array::Ptr>();
    if (a->size() > 1024) bad("$.inputs has more than 1024 inputs");
    std::size_t uploaded = 0;
    for (std::size_t i = 0; i < a->size(); ++i) {
      std::string where = "$.inputs[" + std::to_string(i) + "]";
      Var item = a->get(static_cast<unsigned>(i));
      InputSpec input;
      if (item.isString()) {
        input.path = item.convert<std::string>();
        if (input.path.empty()) bad(where + " is empty: give a path in the GFS, or an absolute one");
        if (input.path.find('\0') != std::string::npos) bad(where + " holds a NUL character");
        if (has_dot_dot(input.path)) bad(where + " has a '..' part: \"" + shown(input.path) + "\"");
      } else if (item.type() == typeid(Object::Ptr)) {
        Object::Ptr u = item.extract<Object::Ptr>();
        check_fields(u, where, {"name", "content", "content_base64"});
        input.name = string_field(u, "name", where);
        if (input.name.empty() || input.name == "." || input.name == ".." || input.name.find('/') != std::string::npos ||
            input.name.size() > 200)
          bad(where + ".name must be a file name (no '/', at most 200 bytes), not \"" + shown(input.name) + "\"");
        bool text = u->has("content"), encoded = u->has("content_base64");
        if (text == encoded) bad(where + " needs \"content\" (text) or \"content_base64\", one of them");
        input.content = text ? string_field(u, "content", where)
                             : decode_base64(string_field(u, "content_base64", where), where + ".content_base64");
        uploaded += input.content.size();
        if (uploaded > max_upload)
          throw ApiError(413, "the uploaded inputs are larger than " + std::to_string(max_upload) +
                                  " bytes; put large inputs in the GFS and name their paths");
      } else {
        bad(where + " must be a path (a string) or an upload {\"name\": ..., \"content\": ...}, not " +
            type_name(item));
      }
      spec.inputs.push_back(std::move(input));
    }
  }
  return spec;
}

std::string run_spec_json(const RunSpec& spec) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("repository", spec.repository);
  o->set("path", spec.path);
  if (!spec.commit.empty()) o->set("commit", spec.commit);
  if (!spec.branch.empty()) o->set("branch", spec.branch);
  Array::Ptr inputs = new Array;
  for (const auto& i : spec.inputs) inputs->add(i.path);
  o->set("inputs", inputs);
  if (spec.jobs) o->set("jobs", spec.jobs);
  if (spec.fail_fast) o->set("fail_fast", true);
  if (spec.allow_dirty) o->set("allow_dirty", true);
  return json_text(o);
}

RunSpec run_spec_from_json(const std::string& text) { return parse_run_request(text, 0); }

CommitHook parse_commit_hook(std::string_view body) {
  Object::Ptr o = parse_object(body, "{\"repository\": \"wordfreq\", \"ref\": \"refs/heads/main\", \"commit\": \"<40 hex digits>\"}");
  check_fields(o, "the notification", {"repository", "ref", "commit"});
  CommitHook hook;
  hook.repository = string_field(o, "repository", "$");
  hook.ref = string_field(o, "ref", "$");
  hook.commit = string_field(o, "commit", "$");
  if (hook.repository.empty()) bad("$.repository is missing: a repository's name or path as service.conf gives it");
  if (hook.commit.size() != 40 || !hex(hook.commit))
    bad("$.commit must be the full commit ID (40 hex digits), not \"" + shown(hook.commit) + "\"");
  if (hook.ref.empty()) bad("$.ref is missing: the ref that moved, e.g. \"refs/heads/main\"");
  if (!valid_ref(hook.ref)) bad("$.ref is not a ref name: \"" + shown(hook.ref) + "\"");
  if (hook.ref.rfind("refs/", 0) != 0) hook.ref = "refs/heads/" + hook.ref;
  return hook;
}

std::map<std::string, std::string> parse_query(std::string_view query, const std::vector<std::string>& known) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string key, value;
    try {
      Poco::URI::decode(std::string(pair.substr(0, eq)), key, true);
      if (eq != std::string_view::npos) Poco::URI::decode(std::string(pair.substr(eq + 1)), value, true);
    } catch (const Poco::Exception&) {
      bad("the query's '" + shown(pair) + "' is not URL-encoded");
    }
    bool found = false;
    for (const auto& k : known) found = found || k == key;
    if (!found) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      bad("unknown query parameter '" + shown(key) + "'" + (list.empty() ? "; this takes none" : "; this takes " + list));
    }
    if (!out.emplace(key, value).second) bad("the query parameter '" + key + "' is given twice");
  }
  return out;
}

std::int64_t query_integer(const std::map<std::string, std::string>& query, const std::string& name,
                           std::int64_t fallback, std::int64_t max) {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  const std::string& v = it->second;
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
    bad("the query parameter '" + name + "' must be a whole number, not '" + shown(v) + "'");
  std::int64_t n = std::stoll(v);
  if (n > max) bad("the query parameter '" + name + "' must be at most " + std::to_string(max));
  return n;
}

Poco::JSON::Object::Ptr run_summary(const RunRecord& r) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.id);
  o->set("state", r.state);
  o->set("kind", r.kind);
  o->set("user", r.user);
  o->set("repository", r.repository);
  o->set("path", r.path);
  o->set("ref", r.ref);
  o->set("commit", r.commit);
  o->set("submitted", rfc3339(r.submitted));
  o->set("started", r.started > 0 ? Var(rfc3339(r.started)) : Var());
  o->set("ended", r.ended > 0 ? Var(rfc3339(r.ended)) : Var());
  double end = r.ended > 0 ? r.ended : 0;
  o->set("seconds", r.started > 0 && end > 0 ? Var(std::round((end - r.started) * 1000) / 1000) : Var());
  o->set("exit_code", r.exit_code >= 0 ? Var(r.exit_code) : Var());
  o->set("error", r.error.empty() ? Var() : Var(r.error));
  o->set("attempts", r.attempts);
  if (!r.hook.empty()) o->set("hook", json_or_null(r.hook));
  o->set("url", "/v1/runs/" + std::to_string(r.id));
  return o;
}

Poco::JSON::Object::Ptr run_detail(const RunRecord& r) {
  Object::Ptr o = run_summary(r);
  Array::Ptr calls = new Array;
  for (const auto& c : r.calls) {
    Object::Ptr call = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    call->set("index", c.index);
    call->set("node", c.node);
    call->set("computation", c.computation);
    call->set("state", c.state);
    Array::Ptr needs = new Array;
    for (int n : c.needs) needs->add(n);
    call->set("needs", needs);
    call->set("started", c.started > 0 ? Var(rfc3339(c.started)) : Var());
    call->set("ended", c.ended > 0 ? Var(rfc3339(c.ended)) : Var());
    call->set("report", json_or_null(c.report));
    call->set("log", "/v1/runs/" + std::to_string(r.id) + "/log?call=" + std::to_string(c.index));
    calls->add(call);
  }
  o->set("calls", calls);
  Var outputs = json_or_null(r.outputs);
  o->set("outputs", outputs.isEmpty() ? Var(Array::Ptr(new Array)) : outputs);
  o->set("log", "/v1/runs/" + std::to_string(r.id) + "/log");
  return o;
}

Poco::JSON::Object::Ptr error_object(int status, const std::string& message) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("status", status);
  o->set("error", message);
  return o;
}

std::string json_text(const Poco::JSON::Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

}  // namespace ce::runner::service
