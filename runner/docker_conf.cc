#include "runner/docker_conf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <toml++/toml.h>
#include <vector>

namespace ce::runner {

namespace {

std::string where(const std::string& origin, const toml::source_region& at) {
  return origin + ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column) + ": ";
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// What a key's value failed to be: throws with the key's place and an example.
struct Reader {
  const std::string& origin;
  const std::string& key;
  const toml::node& node;
  const char* example;

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(where(origin, node.source()) + what + "; e.g. " + example);
  }
  [[noreturn]] void wrong_type(const std::string& wanted) const {
    fail("'" + key + "' must be " + wanted + ", not " + type_name(node));
  }
  std::string string() const {
    if (!node.is_string()) wrong_type("a string");
    std::string value = **node.as_string();
    if (value.empty()) fail("'" + key + "' must not be empty");
    return value;
  }
};

struct KeySpec {
  const char* name;
  const char* example;
  std::function<void(const Reader&, DockerConf&)> read;
};

bool valid_name(const std::string& name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

const std::vector<KeySpec>& keys() {
  static const std::vector<KeySpec> table = {
      {"image", "image = \"debian:bookworm\"", [](const Reader& r, DockerConf& c) { c.image = r.string(); }},
      {"name", "name = \"segmentation\"",
       [](const Reader& r, DockerConf& c) {
         c.name = r.string();
         if (!valid_name(c.name)) r.fail("'name' may hold only letters, digits, '.', '_' and '-'");
       }},
      {"workdir", "workdir = \"/work\"",
       [](const Reader& r, DockerConf& c) {
         c.workdir = r.string();
         if (c.workdir[0] != '/') r.fail("'workdir' must be an absolute path in the container");
       }},
      {"env", "env = { OMP_NUM_THREADS = \"4\" }",
       [](const Reader& r, DockerConf& c) {
         if (!r.node.is_table()) r.wrong_type("a table of names to strings");
         for (const auto& [name, value] : *r.node.as_table()) {
           std::string key(name.str());
           Reader item{r.origin, key, value, r.example};
           if (value.is_string()) {
             c.env[key] = **value.as_string();
           } else if (value.is_integer()) {
             c.env[key] = std::to_string(**value.as_integer());
           } else {
             item.wrong_type("a string");
           }
           if (key.empty() || key.find('=') != std::string::npos)
             Reader{r.origin, key, value, r.example}.fail("'" + key + "' is not an environment variable name");
         }
       }},
      {"user", "user = \"root\" (or \"1000:1000\")", [](const Reader& r, DockerConf& c) { c.user = r.string(); }},
      {"network", "network = \"bridge\" (default \"none\")", [](const Reader& r, DockerConf& c) { c.network = r.string(); }},
      {"cpus", "cpus = 2.5",
       [](const Reader& r, DockerConf& c) {
         double cpus = 0;
         if (r.node.is_integer())
           cpus = static_cast<double>(**r.node.as_integer());
         else if (r.node.is_floating_point())
           cpus = **r.node.as_floating_point();
         else
           r.wrong_type("a number");
         if (!(cpus > 0)) r.fail("'cpus' must be more than 0");
         if (cpus > limits::cpus) r.fail("'cpus' must be at most " + std::to_string(limits::cpus));
         c.nano_cpus = static_cast<std::int64_t>(std::llround(cpus * 1e9));
       }},
      {"memory", "memory = \"4g\" (units k, m, g, t)",
       [](const Reader& r, DockerConf& c) {
         std::optional<std::int64_t> bytes;
         if (r.node.is_integer())
           bytes = **r.node.as_integer();
         else if (r.node.is_string())
           bytes = parse_size(**r.node.as_string());
         else
           r.wrong_type("a size");
         if (!bytes) r.fail("'memory' = \"" + std::string(**r.node.as_string()) + "\" is not a size");
         if (*bytes < 6 * 1024 * 1024) r.fail("'memory' must be at least 6m, the engine's minimum");
         if (*bytes > limits::memory_bytes) r.fail("'memory' must be at most 1024t");
         c.memory_bytes = *bytes;
       }},
      {"pids", "pids = 512",
       [](const Reader& r, DockerConf& c) {
         if (!r.node.is_integer()) r.wrong_type("an integer");
         c.pids = **r.node.as_integer();
         if (c.pids <= 0) r.fail("'pids' must be more than 0");
         if (c.pids > limits::pids) r.fail("'pids' must be at most " + std::to_string(limits::pids) + ", the kernel's limit");
       }},
      {"timeout", "timeout = \"2h\" (units s, m, h, d)",
       [](const Reader& r, DockerConf& c) {
         std::optional<std::int64_t> seconds;
         if (r.node.is_integer())
           seconds = **r.node.as_integer();
         else if (r.node.is_string())
           seconds = parse_duration(**r.node.as_string());
         else
           r.wrong_type("a duration");
         if (!seconds) r.fail("'timeout' = \"" + std::string(**r.node.as_string()) + "\" is not a duration");
         if (*seconds <= 0) r.fail("'timeout' must be more than 0");
         // Deadlines are computed in milliseconds on a 64-bit clock: a year
         // is far from overflowing it, and longer is no timeout at all.
         if (*seconds > limits::timeout_seconds) r.fail("'timeout' must be at most 365d");
         c.timeout_seconds = *seconds;
       }},
  };
  return table;
}

std::string known_keys() {
  std::string out;
  for (const auto& k : keys()) out += (out.empty() ? "" : ", ") + std::string(k.name);
  return out;
}

std::optional<std::int64_t> number_with_unit(std::string_view text, const std::vector<std::pair<std::string, std::int64_t>>& units) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || value < 0) return std::nullopt;
  std::string unit(end, text.data() + text.size());
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) { return std::tolower(ch); });
  for (const auto& [name, factor] : units)
    if (unit == name) {
      if (value > INT64_MAX / factor) return std::nullopt;
      return value * factor;
    }
  return std::nullopt;
}

// toml++ 3.3 (Debian's) reaches undefined behaviour on some non-ASCII
// characters outside strings (found by tests/fuzz/fuzz_docker_conf.cc). TOML
// allows them only in strings and comments, so we refuse them, and invalid
// UTF-8 anywhere, before toml++ sees the text.
void check_characters(std::string_view text, const std::string& origin) {
  int line = 1, column = 1;
  auto fail = [&](const std::string& what) {
    throw ConfigError(origin + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
  };
  enum class In { code, comment, basic, literal, multi_basic, multi_literal } in = In::code;
  int brackets = 0;          // [ ] depth inside values (arrays)
  char prev = '\n';         // the last character outside strings and comments
  bool line_start = true;    // only blanks so far on this line, outside strings
  auto bare = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-'; };
  for (std::size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    std::size_t length = 1;
    if (in == In::code && line_start && brackets == 0 && c == '[') {
      // A table header: toml++ 3.3 asserts on a header without a name.
      std::size_t j = i + 1;
      if (j < text.size() && text[j] == '[') ++j;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
      if (j >= text.size() || !(bare(text[j]) || text[j] == '"' || text[j] == '\''))
        fail("a table header needs a name, as in [env]");
      line_start = false;
      column += static_cast<int>(j - i);
      i = j;
      continue;
    }
    bool line_start_quote = line_start;
    if (in == In::code && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      if (line_start && brackets == 0 && c != '#' && c != ']' && !(bare(static_cast<char>(c)) || c == '"' || c == '\'') &&
          c < 0x80)
        fail(std::string("a line must start with a key, a [table] or a comment, not '") + static_cast<char>(c) + "'");
      line_start = false;
      if (c == '[') ++brackets;
      if (c == ']' && brackets > 0) --brackets;
    }
    char before = prev;
    if (in == In::code && c != ' ' && c != '\t' && c != '\r') prev = static_cast<char>(c);
    if (c >= 0x80) {
      // One UTF-8 sequence: its length from the lead byte, then continuation bytes.
      length = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
      if (length == 0 || i + length > text.size()) fail("invalid UTF-8; docker.conf must be UTF-8 text");
      for (std::size_t k = 1; k < length; ++k)
        if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) fail("invalid UTF-8; docker.conf must be UTF-8 text");
      if (in == In::code)
        fail("a non-ASCII character outside a string or comment; write names and values in ASCII or quote them");
    } else if (c == '\n') {
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;
      if (in == In::code) line_start = true;
      ++line;
      column = 1;
      ++i;
      continue;
    } else if (in == In::code) {
      if (c == '#') {
        in = In::comment;
      } else if (text.compare(i, 3, "\"\"\"") == 0) {
        in = In::multi_basic;
        length = 3;
      } else if (text.compare(i, 3, "'''") == 0) {
        in = In::multi_literal;
        length = 3;
      } else if ((c == '"' || c == '\'') && (line_start_quote || before == '=' || before == '[' ||
                                              before == ',' || before == '{' || before == '.')) {
        // A string only where TOML has one: a value, an array item or a key.
        in = c == '"' ? In::basic : In::literal;
      }
    } else if ((in == In::basic || in == In::multi_basic) && c == '\\') {
      length = i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0x80 && text[i + 1] != '\n' ? 2 : 1;
    } else if (in == In::basic && c == '"') {
      in = In::code;
    } else if (in == In::literal && c == '\'') {
      in = In::code;
    } else if (in == In::multi_basic && text.compare(i, 3, "\"\"\"") == 0) {
      in = In::code;
      length = 3;
    } else if (in == In::multi_literal && text.compare(i, 3, "'''") == 0) {
      in = In::code;
      length = 3;
    }
    i += length;
    column += static_cast<int>(length);
  }
}

}  // namespace

std::optional<std::int64_t> parse_size(std::string_view text) {
  const std::int64_t k = 1024;
  return number_with_unit(text, {{"", 1}, {"b", 1}, {"k", k}, {"kb", k}, {"m", k * k}, {"mb", k * k},
                                 {"g", k * k * k}, {"gb", k * k * k}, {"t", k * k * k * k}, {"tb", k * k * k * k}});
}

std::optional<std::int64_t> parse_duration(std::string_view text) {
  return number_with_unit(text, {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}});
}

DockerConf parse_docker_conf(std::string_view text, const std::string& origin) {
  check_characters(text, origin);
  toml::table table;
  try {
    table = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(where(origin, e.source()) + std::string(e.description()) +
                      "; docker.conf is TOML, e.g. image = \"debian:bookworm\"");
  }
  DockerConf conf;
  bool has_image = false;
  for (const auto& [key, node] : table) {
    std::string name(key.str());
    const KeySpec* spec = nullptr;
    for (const auto& k : keys())
      if (name == k.name) spec = &k;
    if (spec == nullptr) {
      const KeySpec* nearest = &keys()[0];
      for (const auto& k : keys())
        if (edit_distance(name, k.name) < edit_distance(name, nearest->name)) nearest = &k;
      std::string hint = edit_distance(name, nearest->name) <= 3
                             ? "did you mean '" + std::string(nearest->name) + "'?"
                             : "known keys: " + known_keys();
      throw ConfigError(where(origin, key.source()) + "unknown key '" + name + "'; " + hint);
    }
    spec->read(Reader{origin, name, node, spec->example}, conf);
    has_image |= name == "image";
  }
  if (!has_image)
    throw ConfigError(origin + ":1:1: the required key 'image' is missing; add e.g. image = \"debian:bookworm\"");
  return conf;
}

DockerConf load_docker_conf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read docker.conf; a computation directory needs one");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_docker_conf(text.str(), path);
}

}  // namespace ce::runner
