// The key-table reader that docker.conf and host.conf share. Each file's
// keys are one table of KeySpecs (name, example, how to read the value);
// parse_toml checks the text before toml++ sees it, find_key looks a
// top-level key up (an unknown one is an error naming the nearest known key),
// and a Reader turns a value of the wrong type or range into a ConfigError at
// the value's file:line:col with the key's example. Internal to runner/: the
// rest of ce-run sees DockerConf and HostConf, not toml++.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <vector>

#include "runner/docker_conf.h"

namespace ce::runner::key_table {

// "origin:LINE:COL: "
std::string where(const std::string& origin, const toml::source_region& at);

// `text` as a message may show it: backslash, '"', control characters and
// non-ASCII bytes escaped (\\ \" \r \n \t \x1b \xc3), cut after 120 bytes.
// A hostile value must not move the cursor or colour the terminal.
std::string escaped(std::string_view text);

struct Reader {
  const std::string& origin;
  const std::string& key;  // as messages show it (escaped if it came from the file)
  const toml::node& node;
  const char* example;

  // "origin:L:C: what; e.g. EXAMPLE" at the value.
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void wrong_type(const std::string& wanted) const;
  std::string string() const;     // a non-empty string
  std::int64_t integer() const;   // an integer
  bool boolean() const;           // true or false
  std::int64_t size() const;      // bytes: an integer, or a string parse_size reads ("4g")
  // An array of non-empty strings; `check` (if given) says what is wrong
  // with one, or "" for nothing, and the error points at that item.
  std::vector<std::string> strings(const std::function<std::string(const std::string&)>& check = {}) const;
};

template <class Conf>
struct KeySpec {
  const char* name;
  const char* example;
  std::function<void(const Reader&, Conf&)> read;
};

// TOML text to its table. `kind` ("docker.conf") and `example` (a valid
// line) go into messages. Throws ConfigError "origin:L:C: ...".
toml::table parse_toml(std::string_view text, const std::string& origin, std::string_view kind,
                       std::string_view example);

// The index of `key` in `names`, or a ConfigError at the key: "unknown key
// 'X'; did you mean 'Y'?" (or the list of known keys when none is near).
std::size_t find_key(const toml::key& key, const std::vector<std::string_view>& names, const std::string& origin);

template <class Conf>
const KeySpec<Conf>& find_key(const toml::key& key, const std::vector<KeySpec<Conf>>& specs,
                              const std::string& origin) {
  std::vector<std::string_view> names;
  for (const auto& spec : specs) names.emplace_back(spec.name);
  return specs[find_key(key, names, origin)];
}

}  // namespace ce::runner::key_table
