#include "runner/docker_conf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "runner/key_table.h"

namespace ce::runner {

namespace {

using key_table::escaped;
using key_table::Reader;
using KeySpec = key_table::KeySpec<DockerConf>;

bool valid_name(const std::string& name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool lower_hex(std::string_view text, std::size_t digits) {
  return text.size() == digits &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool valid_path_component(std::string_view text) {
  std::size_t i = 0;
  auto alnums = [&] {
    std::size_t start = i;
    while (i < text.size() && lower_alnum(text[i])) ++i;
    return i > start;
  };
  if (!alnums()) return false;
  while (i < text.size()) {
    if (text[i] == '.') {
      ++i;
    } else if (text[i] == '_') {
      ++i;
      if (i < text.size() && text[i] == '_') ++i;
    } else if (text[i] == '-') {
      while (i < text.size() && text[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnums()) return false;
  }
  return true;
}

// [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?
bool valid_domain_component(std::string_view text) {
  return !text.empty() && ascii_alnum(text.front()) && ascii_alnum(text.back()) &&
         std::all_of(text.begin(), text.end(), [](char c) { return ascii_alnum(c) || c == '-'; });
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool valid_tag(std::string_view text) {
  return !text.empty() && text.size() <= 128 && (ascii_alnum(text[0]) || text[0] == '_') &&
         std::all_of(text.begin(), text.end(), [](char c) { return ascii_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string quoted(std::string_view text) { return "'" + escaped(text) + "'"; }

std::optional<std::string> domain_problem(std::string_view domain) {
  std::size_t colon = domain.find(':');
  std::string_view host = domain.substr(0, colon);
  for (std::string_view part : split(host, '.'))
    if (!valid_domain_component(part))
      return "its registry " + quoted(host) + " is not a host name (letters, digits and '-', in parts joined by '.')";
  if (colon != std::string_view::npos) {
    std::string_view port = domain.substr(colon + 1);
    if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return "its registry port " + quoted(port) + " is not a number";
  }
  return std::nullopt;
}

// Why `name` cannot be an environment variable docker.conf sets, or "".
std::string env_name_problem(const std::string& name) {
  bool well_formed = !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
                     std::all_of(name.begin(), name.end(), [](char c) { return ascii_alnum(c) || c == '_'; });
  if (!well_formed)
    return quoted(name) + " is not an environment variable name: letters, digits and '_', not starting with a digit";
  for (std::string_view reserved : reserved_env_names) {
    if (reserved.back() == '*') {
      std::string_view prefix = reserved.substr(0, reserved.size() - 1);
      if (name.compare(0, prefix.size(), prefix) == 0)
        return "'" + name + "' is reserved: names starting with " + std::string(prefix) +
               " belong to ce-run; choose another name";
    } else if (name == reserved) {
      if (name == "PATH")
        return "'PATH' cannot be set in docker.conf: replacing the image's PATH can stop the container from "
               "starting; install programs in /usr/local/bin in a setup stage instead";
      return "'" + name + "' is set by ce-run and cannot be set in docker.conf; choose another name";
    }
  }
  return "";
}

// What is wrong with one placement constraint, or "": Swarm's
// "ATTRIBUTE OP VALUE", of the attributes a computation may ask for
// (node.id is ce-run's, to move a call off a node it was lost on).
std::string placement_problem(const std::string& text) {
  auto op = text.find("==") != std::string::npos ? text.find("==") : text.find("!=");
  const std::string shown = "'placement' holds \"" + escaped(text) + "\", which ";
  if (op == std::string::npos) return shown + "is not a constraint: give \"ATTRIBUTE == VALUE\" or \"ATTRIBUTE != VALUE\"";
  auto trim = [](std::string t) {
    t.erase(0, t.find_first_not_of(' '));
    t.erase(t.find_last_not_of(' ') + 1);
    return t;
  };
  std::string attribute = trim(text.substr(0, op)), value = trim(text.substr(op + 2));
  auto plain = [](const std::string& t, const char* extra) {
    return !t.empty() && std::all_of(t.begin(), t.end(), [&](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || std::strchr(extra, ch) != nullptr;
    });
  };
  bool known = attribute == "node.hostname" || attribute == "node.role" || attribute == "node.platform.os" ||
               attribute == "node.platform.arch" ||
               (attribute.rfind("node.labels.", 0) == 0 && plain(attribute.substr(12), "_.-"));
  if (!known)
    return shown + "names no attribute a computation may place by: node.labels.KEY, node.hostname, node.role, "
           "node.platform.os or node.platform.arch";
  if (!plain(value, "_.:-")) return shown + "has no plain value (letters, digits, '_', '.', ':' and '-')";
  return "";
}

const std::vector<KeySpec>& keys() {
  static const std::vector<KeySpec> table = {
      {"image", "image = \"debian:bookworm\"",
       [](const Reader& r, DockerConf& c) {
         c.image = r.string();
         if (auto problem = image_reference_problem(c.image))
           r.fail("'image' = \"" + escaped(c.image) + "\" is not an image reference: " + *problem);
       }},
      {"name", "name = \"segmentation\"",
       [](const Reader& r, DockerConf& c) {
         c.name = r.string();
         if (!valid_name(c.name)) r.fail("'name' may hold only letters, digits, '.', '_' and '-'");
       }},
      {"workdir", "workdir = \"/work\"",
       [](const Reader& r, DockerConf& c) {
         c.workdir = r.string();
         if (c.workdir[0] != '/') r.fail("'workdir' must be an absolute path in the container");
         for (char ch : c.workdir)
           if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
             r.fail("'workdir' = \"" + escaped(c.workdir) + "\" holds a control character");
       }},
      {"env", "env = { OMP_NUM_THREADS = \"4\" }",
       [](const Reader& r, DockerConf& c) {
         if (!r.node.is_table()) r.wrong_type("a table of names to strings");
         for (const auto& [name, value] : *r.node.as_table()) {
           std::string key(name.str());
           // The name's own place: the fix is there, not in the value.
           std::string problem = env_name_problem(key);
           if (!problem.empty()) throw ConfigError(key_table::where(r.origin, name.source()) + problem);
           Reader item{r.origin, key, value, r.example};
           if (value.is_string()) {
             c.env[key] = **value.as_string();
             // The Engine API takes "NAME=value" as a C string in the end.
             if (c.env[key].find('\0') != std::string::npos) item.fail("'" + key + "' must not hold a NUL character");
           } else if (value.is_integer()) {
             c.env[key] = std::to_string(**value.as_integer());
           } else {
             item.wrong_type("a string");
           }
         }
       }},
      {"user", "user = \"root\" (or \"1000:1000\")",
       [](const Reader& r, DockerConf& c) {
         c.user = r.string();
         // NAME or UID, optionally ":GROUP" or ":GID", as the engine takes it.
         auto part = [](std::string_view p) {
           return !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) {
             return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
           });
         };
         auto colon = c.user.find(':');
         if (!part(std::string_view(c.user).substr(0, colon)) ||
             (colon != std::string::npos && !part(std::string_view(c.user).substr(colon + 1))))
           r.fail("'user' = \"" + escaped(c.user) + "\" is not a user: give a name or uid, optionally \":group\" "
                  "or \":gid\"");
       }},
      {"network", "network = \"bridge\" (default \"none\")",
       [](const Reader& r, DockerConf& c) {
         c.network = r.string();
         const std::string allowed =
             "docker.conf may choose \"none\", \"bridge\" or a network root allows in host.conf";
         std::string shown = "'network' = \"" + escaped(c.network) + "\"";
         if (c.network == "host") r.fail(shown + " would give the computation the host's network; " + allowed);
         if (c.network.rfind("container:", 0) == 0)
           r.fail(shown + " would give the computation another container's network; " + allowed);
         if (c.network.find_first_of(":/") != std::string::npos)
           r.fail(shown + " is not a network name: ':' and '/' belong to forms such as container:NAME; " + allowed);
         if (!valid_network_name(c.network))
           r.fail(shown +
                  " is not a network name (letters, digits, '_', '.' and '-', starting with a letter or digit)");
       }},
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
         std::int64_t bytes = r.size();
         if (bytes < 6 * 1024 * 1024) r.fail("'memory' must be at least 6m, the engine's minimum");
         if (bytes > limits::memory_bytes) r.fail("'memory' must be at most 1024t");
         c.memory_bytes = bytes;
       }},
      {"pids", "pids = 512",
       [](const Reader& r, DockerConf& c) {
         c.pids = r.integer();
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
         if (!seconds) r.fail("'timeout' = \"" + escaped(**r.node.as_string()) + "\" is not a duration");
         if (*seconds <= 0) r.fail("'timeout' must be more than 0");
         // Deadlines are computed in milliseconds on a 64-bit clock: a year
         // is far from overflowing it, and longer is no timeout at all.
         if (*seconds > limits::timeout_seconds) r.fail("'timeout' must be at most 365d");
         c.timeout_seconds = *seconds;
       }},
      {"placement", "placement = [\"node.labels.gpu == true\"]",
       [](const Reader& r, DockerConf& c) { c.placement = r.strings(placement_problem); }},
  };
  return table;
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

}  // namespace

std::optional<std::int64_t> parse_size(std::string_view text) {
  const std::int64_t k = 1024;
  return number_with_unit(text, {{"", 1}, {"b", 1}, {"k", k}, {"kb", k}, {"m", k * k}, {"mb", k * k},
                                 {"g", k * k * k}, {"gb", k * k * k}, {"t", k * k * k * k}, {"tb", k * k * k * k}});
}

std::optional<std::int64_t> parse_duration(std::string_view text) {
  return number_with_unit(text, {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}});
}

std::optional<std::string> image_reference_problem(std::string_view reference) {
  if (reference.empty()) return "it is empty";
  for (char c : reference)
    if (!ascii_alnum(c) && std::string_view("._-/:@").find(c) == std::string_view::npos)
      return "it holds " + quoted(std::string_view(&c, 1)) +
             "; a reference holds only letters, digits, '.', '_', '-', '/', ':' and '@'";
  if (lower_hex(reference, 64))
    return "a name of 64 hex digits is an image ID; write it as sha256:" + escaped(reference);
  std::string_view rest = reference;
  if (std::size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    std::size_t colon = digest.find(':');
    std::string_view algorithm = digest.substr(0, colon);
    std::string_view hex = colon == std::string_view::npos ? "" : digest.substr(colon + 1);
    bool valid = (algorithm == "sha256" && lower_hex(hex, 64)) || (algorithm == "sha384" && lower_hex(hex, 96)) ||
                 (algorithm == "sha512" && lower_hex(hex, 128));
    if (!valid)
      return "its digest " + quoted(digest) +
             " is not sha256: and 64 lower-case hex digits (or sha384: and 96, sha512: and 128)";
  } else if (rest.rfind("sha256:", 0) == 0) {
    if (lower_hex(rest.substr(7), 64)) return std::nullopt;  // an image ID
    return "an image ID is sha256: and 64 lower-case hex digits";
  }
  std::size_t colon = rest.rfind(':'), slash = rest.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!valid_tag(tag))
      return "its tag " + quoted(tag) +
             " is not 1 to 128 letters, digits, '_', '.' or '-' starting with a letter, digit or '_'";
  }
  if (rest.empty()) return "it has no name before the tag or digest";
  if (rest.size() > 255)
    return "its name is " + std::to_string(rest.size()) + " characters long; at most 255 are allowed";
  std::vector<std::string_view> components = split(rest, '/');
  for (std::string_view component : components)
    if (component == "." || component == "..")
      return "it has the path component " + quoted(component) + "; a reference is not a path";
  std::string_view first = components.front();
  if (components.size() > 1 && (first.find_first_of(".:") != std::string_view::npos || first == "localhost")) {
    if (auto problem = domain_problem(first)) return problem;
    components.erase(components.begin());
  }
  for (std::string_view component : components) {
    if (component.empty()) return "it has an empty path component (as in 'a//b', or a '/' at an end)";
    if (std::any_of(component.begin(), component.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
      return "its path component " + quoted(component) + " has upper-case letters; repository names are lower case";
    if (!valid_path_component(component))
      return "its path component " + quoted(component) +
             " is not lower-case letters and digits joined by '.', '_', '__' or '-'";
  }
  return std::nullopt;
}

bool valid_network_name(std::string_view name) {
  return !name.empty() && ascii_alnum(name[0]) &&
         std::all_of(name.begin(), name.end(),
                     [](char c) { return ascii_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

DockerConf parse_docker_conf(std::string_view text, const std::string& origin) {
  toml::table table = key_table::parse_toml(text, origin, "docker.conf", "image = \"debian:bookworm\"");
  DockerConf conf;
  conf.origin = origin;
  for (const auto& [key, node] : table) {
    const KeySpec& spec = key_table::find_key(key, keys(), origin);
    std::string name(key.str());
    spec.read(Reader{origin, name, node, spec.example}, conf);
    conf.positions[name] = {static_cast<int>(key.source().begin.line), static_cast<int>(key.source().begin.column)};
  }
  if (conf.positions.count("image") == 0)
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
