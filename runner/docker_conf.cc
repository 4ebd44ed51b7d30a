#include "runner/docker_conf.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>
#include <vector>

namespace ce::runner {

namespace {

enum class KeyType { string };

struct KeySpec {
  const char* name;
  KeyType type;
  bool required;
  std::string DockerConf::*field;
};

const KeySpec keys[] = {
    {"image", KeyType::string, true, &DockerConf::image},
    {"name", KeyType::string, false, &DockerConf::name},
};

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

std::string known_keys() {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + std::string(k.name);
  return out;
}

}  // namespace

DockerConf parse_docker_conf(std::string_view text, const std::string& origin) {
  toml::table table;
  try {
    table = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(where(origin, e.source()) + std::string(e.description()) +
                      "; docker.conf is TOML, e.g. image = \"debian:bookworm\"");
  }
  DockerConf conf;
  for (const auto& [key, node] : table) {
    const KeySpec* spec = nullptr;
    for (const auto& k : keys)
      if (key.str() == k.name) spec = &k;
    if (spec == nullptr) {
      const KeySpec* nearest = &keys[0];
      for (const auto& k : keys)
        if (edit_distance(key.str(), k.name) < edit_distance(key.str(), nearest->name)) nearest = &k;
      std::string hint = edit_distance(key.str(), nearest->name) <= 3
                             ? "did you mean '" + std::string(nearest->name) + "'?"
                             : "known keys: " + known_keys();
      throw ConfigError(where(origin, key.source()) + "unknown key '" + std::string(key.str()) + "'; " + hint);
    }
    switch (spec->type) {
      case KeyType::string:
        if (!node.is_string())
          throw ConfigError(where(origin, node.source()) + "'" + spec->name + "' must be a string, not " + type_name(node) + "; e.g. " + spec->name + " = \"...\"");
        conf.*(spec->field) = **node.as_string();
        if ((conf.*(spec->field)).empty())
          throw ConfigError(where(origin, node.source()) + "'" + spec->name + "' must not be empty");
        break;
    }
  }
  for (const auto& k : keys) {
    if (k.required && (conf.*(k.field)).empty())
      throw ConfigError(origin + ":1:1: the required key '" + k.name +
                        "' is missing; add e.g. image = \"debian:bookworm\"");
  }
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
