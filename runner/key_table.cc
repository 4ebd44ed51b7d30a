#include "runner/key_table.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace ce::runner::key_table {

namespace {

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

// toml++ 3.3 (Debian's) reaches undefined behaviour on some non-ASCII
// characters outside strings (found by tests/fuzz/fuzz_docker_conf.cc). TOML
// allows them only in strings and comments, so we refuse them, and invalid
// UTF-8 anywhere, before toml++ sees the text.
void check_characters(std::string_view text, const std::string& origin, std::string_view kind) {
  int line = 1, column = 1;
  auto fail = [&](const std::string& what) {
    throw ConfigError(origin + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
  };
  const std::string not_utf8 = "invalid UTF-8; " + std::string(kind) + " must be UTF-8 text";
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
      if (length == 0 || i + length > text.size()) fail(not_utf8);
      for (std::size_t k = 1; k < length; ++k)
        if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) fail(not_utf8);
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

std::string where(const std::string& origin, const toml::source_region& at) {
  return origin + ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column) + ": ";
}

std::string escaped(std::string_view text) {
  const std::size_t shown = 120;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < shown; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char hex[5];
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  if (text.size() > shown) out += "...";
  return out;
}

void Reader::fail(const std::string& what) const {
  throw ConfigError(where(origin, node.source()) + what + "; e.g. " + example);
}

void Reader::wrong_type(const std::string& wanted) const {
  fail("'" + key + "' must be " + wanted + ", not " + type_name(node));
}

std::string Reader::string() const {
  if (!node.is_string()) wrong_type("a string");
  std::string value = **node.as_string();
  if (value.empty()) fail("'" + key + "' must not be empty");
  return value;
}

std::int64_t Reader::integer() const {
  if (!node.is_integer()) wrong_type("an integer");
  return **node.as_integer();
}

bool Reader::boolean() const {
  auto value = node.value<bool>();
  if (!node.is_boolean() || !value) wrong_type("true or false");
  return *value;
}

std::int64_t Reader::size() const {
  if (node.is_integer()) return **node.as_integer();
  if (!node.is_string()) wrong_type("a size");
  auto bytes = parse_size(**node.as_string());
  if (!bytes) fail("'" + key + "' = \"" + escaped(**node.as_string()) + "\" is not a size");
  return *bytes;
}

std::vector<std::string> Reader::strings(const std::function<std::string(const std::string&)>& check) const {
  if (!node.is_array()) wrong_type("an array of strings");
  std::vector<std::string> out;
  for (const toml::node& item : *node.as_array()) {
    Reader at{origin, key, item, example};
    if (!item.is_string()) at.fail("'" + key + "' must hold strings, not " + type_name(item));
    std::string value = **item.as_string();
    if (value.empty()) at.fail("'" + key + "' must not hold an empty string");
    if (check) {
      std::string problem = check(value);
      if (!problem.empty()) at.fail(problem);
    }
    out.push_back(std::move(value));
  }
  return out;
}

toml::table parse_toml(std::string_view text, const std::string& origin, std::string_view kind,
                       std::string_view example) {
  check_characters(text, origin, kind);
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(where(origin, e.source()) + std::string(e.description()) + "; " + std::string(kind) +
                      " is TOML, e.g. " + std::string(example));
  }
}

std::size_t find_key(const toml::key& key, const std::vector<std::string_view>& names, const std::string& origin) {
  std::string_view name = key.str();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return i;
  std::size_t nearest = 0;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (edit_distance(name, names[i]) < edit_distance(name, names[nearest])) nearest = i;
  std::string hint;
  if (edit_distance(name, names[nearest]) <= 3) {
    hint = "did you mean '" + std::string(names[nearest]) + "'?";
  } else {
    hint = "known keys: ";
    for (std::size_t i = 0; i < names.size(); ++i) hint += (i == 0 ? "" : ", ") + std::string(names[i]);
  }
  throw ConfigError(where(origin, key.source()) + "unknown key '" + escaped(name) + "'; " + hint);
}

}  // namespace ce::runner::key_table
