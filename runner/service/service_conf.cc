#include "runner/service/service_conf.h"

#include <arpa/inet.h>
#include <cctype>
#include <stdexcept>

#include "runner/host_conf.h"
#include "runner/key_table.h"
#include "stages/stage_key.h"

namespace ce::runner::service {

namespace {

using key_table::escaped;
using key_table::Reader;
using KeySpec = key_table::KeySpec<ServiceConf>;

std::string check_absolute(const std::string& key, const std::string& path) {
  if (path[0] != '/') return "'" + key + "' holds \"" + escaped(path) + "\", not an absolute path";
  if (path.find('\0') != std::string::npos) return "'" + key + "' holds a path with a NUL character";
  for (std::size_t at = 0; (at = path.find("..", at)) != std::string::npos; ++at)
    if ((at == 0 || path[at - 1] == '/') && (at + 2 == path.size() || path[at + 2] == '/'))
      return "'" + key + "' holds \"" + escaped(path) + "\", which has a '..' part";
  return "";
}

std::string absolute(const Reader& r) {
  std::string path = r.string();
  if (std::string why = check_absolute(r.key, path); !why.empty()) r.fail(why);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::vector<std::string> absolutes(const Reader& r) {
  auto paths = r.strings([&](const std::string& p) { return check_absolute(r.key, p); });
  for (auto& p : paths)
    while (p.size() > 1 && p.back() == '/') p.pop_back();
  return paths;
}

// A relative path inside a repository: no '..', not absolute.
std::string relative(const Reader& r, std::string path) {
  if (path.empty()) return path;
  if (path[0] == '/' || path.find('\0') != std::string::npos)
    r.fail("'" + r.key + "' holds \"" + escaped(path) + "\", not a path relative to the repository");
  for (std::size_t at = 0; (at = path.find("..", at)) != std::string::npos; ++at)
    if ((at == 0 || path[at - 1] == '/') && (at + 2 == path.size() || path[at + 2] == '/'))
      r.fail("'" + r.key + "' holds \"" + escaped(path) + "\", which has a '..' part");
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

const toml::table& table_of(const Reader& r) {
  const toml::table* t = r.node.as_table();
  if (!t) r.wrong_type("a table");
  return *t;
}

// Each key of `table` read by the spec of that name (unknown keys are errors).
template <class T>
void read_table(const toml::table& table, const std::vector<key_table::KeySpec<T>>& specs, const std::string& origin,
                const std::string& prefix, T& into) {
  for (const auto& [key, node] : table) {
    const auto& spec = key_table::find_key(key, specs, origin);
    std::string name = prefix + std::string(key.str());
    spec.read(Reader{origin, name, node, spec.example}, into);
  }
}

const std::vector<key_table::KeySpec<HookTarget>>& target_keys() {
  static const std::vector<key_table::KeySpec<HookTarget>> table = {
      {"path", "path = \"examples/wordfreq\" (\"\" for the repository's top)",
       [](const Reader& r, HookTarget& t) {
         auto value = r.node.value<std::string>();
         if (!value) r.wrong_type("a string");
         t.path = relative(r, *value);
       }},
      {"inputs", "inputs = [\"inputs/text.txt\"]",
       [](const Reader& r, HookTarget& t) {
         if (const auto* a = r.node.as_array(); a && a->empty()) return;
         t.inputs = r.strings();
       }},
  };
  return table;
}

const std::vector<key_table::KeySpec<HookRepository>>& repository_keys() {
  static const std::vector<key_table::KeySpec<HookRepository>> table = {
      {"name", "name = \"wordfreq\"",
       [](const Reader& r, HookRepository& h) {
         h.name = r.string();
         for (char c : h.name)
           if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
             r.fail("'" + r.key + "' holds \"" + escaped(h.name) + "\"; a name is letters, digits, '-', '_' and '.'");
       }},
      {"path", "path = \"/srv/git/wordfreq\"", [](const Reader& r, HookRepository& h) { h.path = absolute(r); }},
      {"user", "user = \"alice\"", [](const Reader& r, HookRepository& h) { h.user = r.string(); }},
      {"refs", "refs = [\"refs/heads/main\"]",
       [](const Reader& r, HookRepository& h) {
         h.refs = r.strings([&](const std::string& ref) -> std::string {
           if (ref.rfind("refs/", 0) != 0) return "'" + r.key + "' holds \"" + escaped(ref) + "\", not a full ref name";
           return "";
         });
       }},
      {"target", "[[repository.target]] path = \"examples/wordfreq\"",
       [](const Reader& r, HookRepository& h) {
         const toml::array* a = r.node.as_array();
         if (!a) r.wrong_type("an array of tables ([[repository.target]])");
         for (const auto& item : *a) {
           Reader each{r.origin, r.key, item, r.example};
           HookTarget target;
           read_table(table_of(each), target_keys(), r.origin, r.key + ".", target);
           h.targets.push_back(target);
         }
       }},
  };
  return table;
}

const std::vector<KeySpec>& keys() {
  static const std::vector<KeySpec> table = {
      {"listen", "listen = \"127.0.0.1:7070\"",
       [](const Reader& r, ServiceConf& c) {
         c.listen = r.string();
         try {
           parse_listen(c.listen);
         } catch (const std::exception& e) {
           r.fail(e.what());
         }
       }},
      {"state", "state = \"/var/lib/ce-run/service\"", [](const Reader& r, ServiceConf& c) { c.state = absolute(r); }},
      {"tokens", "tokens = \"/etc/ce-run/service.tokens\"",
       [](const Reader& r, ServiceConf& c) { c.tokens = absolute(r); }},
      {"gfs", "gfs = \"/var/lib/ce-run/gfs\"", [](const Reader& r, ServiceConf& c) { c.gfs = absolute(r); }},
      {"repository_roots", "repository_roots = [\"/srv/git\"]",
       [](const Reader& r, ServiceConf& c) { c.repository_roots = absolutes(r); }},
      {"input_roots", "input_roots = [\"/srv/data\"]",
       [](const Reader& r, ServiceConf& c) { c.input_roots = absolutes(r); }},
      {"max_calls", "max_calls = 8",
       [](const Reader& r, ServiceConf& c) {
         c.max_calls = r.integer();
         if (c.max_calls < 1 || c.max_calls > 4096) r.fail("'max_calls' must be from 1 to 4096");
       }},
      {"max_body", "max_body = \"64m\" (units k, m, g)",
       [](const Reader& r, ServiceConf& c) {
         c.max_body_bytes = r.size();
         if (c.max_body_bytes < 1024 || c.max_body_bytes > (std::int64_t{4} << 30))
           r.fail("'max_body' must be from 1k to 4g");
       }},
      {"swarm", "swarm = true",
       [](const Reader& r, ServiceConf& c) { c.swarm = r.boolean(); }},
      {"public_reads", "public_reads = false",
       [](const Reader& r, ServiceConf& c) { c.public_reads = r.boolean(); }},
      {"repository", "[[repository]] name = \"wordfreq\"",
       [](const Reader& r, ServiceConf& c) {
         const toml::array* a = r.node.as_array();
         if (!a) r.wrong_type("an array of tables ([[repository]])");
         for (const auto& item : *a) {
           Reader each{r.origin, r.key, item, r.example};
           HookRepository repo;
           read_table(table_of(each), repository_keys(), r.origin, "repository.", repo);
           auto where = key_table::where(r.origin, item.source());
           if (repo.name.empty() || repo.path.empty() || repo.user.empty())
             throw ConfigError(where + "a [[repository]] needs name, path and user; e.g. name = \"wordfreq\", "
                                       "path = \"/srv/git/wordfreq\", user = \"alice\"");
           if (repo.user == "root")
             throw ConfigError(where + "repository '" + repo.name + "': its runs would run as root; name the "
                                       "user whose rights they have");
           for (const auto& other : c.repositories)
             if (other.name == repo.name)
               throw ConfigError(where + "a second [[repository]] named '" + repo.name + "'; names must differ");
           c.repositories.push_back(repo);
         }
       }},
  };
  return table;
}

bool token_character(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
         c == '=' || c == '-';
}

}  // namespace

ListenAddress parse_listen(const std::string& text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw std::runtime_error("'" + escaped(text) + "' is not ADDRESS:PORT (e.g. 127.0.0.1:7070)");
  ListenAddress out;
  out.host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    throw std::runtime_error("'" + escaped(text) + "': the port must be a number from 0 to 65535");
  out.port = static_cast<std::uint16_t>(std::stoi(port));
  bool v6 = out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']';
  if (v6) out.host = out.host.substr(1, out.host.size() - 2);
  unsigned char bytes[16];
  if (v6 ? ::inet_pton(AF_INET6, out.host.c_str(), bytes) != 1 : ::inet_pton(AF_INET, out.host.c_str(), bytes) != 1)
    throw std::runtime_error("'" + escaped(text) + "': the address must be an IPv4 address or an IPv6 one in "
                             "brackets ([::1]:7070), not a host name");
  out.loopback = v6 ? out.host == "::1" : bytes[0] == 127;
  return out;
}

ServiceConf parse_service_conf(std::string_view text, const std::string& origin) {
  toml::table table = key_table::parse_toml(text, origin, "service.conf", "listen = \"127.0.0.1:7070\"");
  ServiceConf conf;
  conf.origin = origin;
  read_table(table, keys(), origin, "", conf);
  return conf;
}

ServiceConf load_service_conf(const std::string& path, bool required) {
  RootFile rules;
  rules.kind = "service.conf";
  rules.example_path = default_conf;
  std::optional<std::string> text =
      read_root_file(path, required ? MissingHostConf::error : MissingHostConf::defaults, rules);
  if (!text) {
    ServiceConf defaults;
    defaults.origin = path;
    return defaults;
  }
  return parse_service_conf(*text, path);
}

std::optional<std::string> Tokens::user(std::string_view token) const {
  auto it = user_of.find(stages::sha256_hex(std::string(token)));
  if (it == user_of.end()) return std::nullopt;
  return it->second;
}

Tokens parse_tokens(std::string_view text, const std::string& origin) {
  Tokens tokens;
  std::size_t start = 0;
  for (int number = 1; start <= text.size(); ++number) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    start = end + 1;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::vector<std::string> words;
    std::size_t at = 0;
    while (at < line.size()) {
      while (at < line.size() && (line[at] == ' ' || line[at] == '\t' || line[at] == '\r')) ++at;
      std::size_t from = at;
      while (at < line.size() && line[at] != ' ' && line[at] != '\t' && line[at] != '\r') ++at;
      if (at > from) words.push_back(line.substr(from, at - from));
    }
    if (words.empty()) continue;
    std::string where = origin + ":" + std::to_string(number) + ": ";
    if (words.size() != 2) throw ConfigError(where + "a line is USER TOKEN (two words), then nothing");
    const std::string &user = words[0], &token = words[1];
    if (token.size() < 24)
      throw ConfigError(where + "the token is " + std::to_string(token.size()) +
                        " characters long; use at least 24 (e.g. openssl rand -hex 24)");
    for (char c : token)
      if (!token_character(c)) throw ConfigError(where + "a token is made of letters, digits and . _ ~ + / = -");
    if (user == "root")
      throw ConfigError(where + "a token stands for a user other than root: the service never runs calls as root");
    if (!tokens.users.count(user)) {
      try {
        Invoker who = user_named(user);
        if (who.root()) throw std::runtime_error("the user '" + user + "' has uid 0: the service never runs calls as root");
        tokens.users.emplace(user, who);
      } catch (const std::exception& e) {
        throw ConfigError(where + e.what());
      }
    }
    auto [it, added] = tokens.user_of.emplace(stages::sha256_hex(token), user);
    if (!added) throw ConfigError(where + "this token is on an earlier line too; each token stands for one user");
  }
  return tokens;
}

std::optional<Tokens> load_tokens(const std::string& path) {
  RootFile rules;
  rules.kind = "the service's tokens file";
  rules.example_path = default_tokens;
  rules.secret = true;
  std::optional<std::string> text = read_root_file(path, MissingHostConf::defaults, rules);
  if (!text) return std::nullopt;
  return parse_tokens(*text, path);
}

}  // namespace ce::runner::service
