#include "runner/host_conf.h"

#include <cctype>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/key_table.h"

namespace ce::runner {

namespace {

using key_table::escaped;
using key_table::Reader;
using KeySpec = key_table::KeySpec<HostConf>;

const std::int64_t min_memory = 6 * 1024 * 1024;  // the engine's minimum, as docker.conf's

void check_memory(const Reader& r, std::int64_t bytes) {
  if (bytes < min_memory) r.fail("'" + r.key + "' must be at least 6m, the engine's minimum");
  if (bytes > limits::memory_bytes) r.fail("'" + r.key + "' must be at most 1024t");
}

void check_pids(const Reader& r, std::int64_t pids) {
  if (pids <= 0) r.fail("'" + r.key + "' must be more than 0");
  if (pids > limits::pids)
    r.fail("'" + r.key + "' must be at most " + std::to_string(limits::pids) + ", the kernel's limit");
}

const std::vector<KeySpec>& keys() {
  static const std::vector<KeySpec> table = {
      {"gfs", "gfs = [\"/data/ce-run/gfs\"]",
       [](const Reader& r, HostConf& h) {
         h.gfs = r.strings([](const std::string& path) -> std::string {
           if (path[0] != '/') return "'gfs' holds \"" + escaped(path) + "\", not an absolute path";
           if (path.find('\0') != std::string::npos) return "'gfs' holds a path with a NUL character";
           return "";
         });
       }},
      {"networks", "networks = [\"lab\"]",
       [](const Reader& r, HostConf& h) {
         h.networks = r.strings([](const std::string& name) -> std::string {
           std::string shown = "'networks' holds \"" + escaped(name) + "\"";
           if (name == "host") return shown + ", which would give computations the host's network";
           if (name.find(':') != std::string::npos)
             return shown + "; a name with ':' (as container:NAME) would give computations another container's network";
           if (!valid_network_name(name))
             return shown + ", not a network name (letters, digits, '_', '.' and '-', starting with a letter or digit)";
           return "";
         });
       }},
      {"memory", "memory = \"8g\" (units k, m, g, t)",
       [](const Reader& r, HostConf& h) {
         h.memory_bytes = r.size();
         check_memory(r, h.memory_bytes);
       }},
      {"max_memory", "max_memory = \"64g\" (units k, m, g, t)",
       [](const Reader& r, HostConf& h) {
         h.max_memory_bytes = r.size();
         check_memory(r, h.max_memory_bytes);
       }},
      {"pids", "pids = 4096",
       [](const Reader& r, HostConf& h) {
         h.pids = r.integer();
         check_pids(r, h.pids);
       }},
      {"max_pids", "max_pids = 32768",
       [](const Reader& r, HostConf& h) {
         h.max_pids = r.integer();
         check_pids(r, h.max_pids);
       }},
      {"swarm", "swarm = true",
       [](const Reader& r, HostConf& h) { h.swarm = r.boolean(); }},
      {"registry", "registry = \"registry.lab.example:5000\"",
       [](const Reader& r, HostConf& h) {
         h.registry = r.string();
         for (char c : h.registry)
           if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' && c != '[' &&
               c != ']')
             r.fail("'registry' holds \"" + escaped(h.registry) + "\", not HOST or HOST:PORT");
       }},
      {"swarm_attempts", "swarm_attempts = 3",
       [](const Reader& r, HostConf& h) {
         h.swarm_attempts = r.integer();
         if (h.swarm_attempts < 1 || h.swarm_attempts > 10) r.fail("'swarm_attempts' must be from 1 to 10");
       }},
  };
  return table;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Why `st` (of `what`, the file or its directory `name`) is not root's alone, or "".
std::string untrusted(const struct stat& st, const std::string& what, const std::string& name) {
  if (st.st_uid != 0)
    return what + " belongs to uid " + std::to_string(st.st_uid) + ", not root; make it root's: chown root " + name;
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return what + " is writable by group or others (mode " + mode_text(st.st_mode) + "); chmod go-w " + name;
  return "";
}

}  // namespace

std::optional<std::string> read_root_file(const std::string& path, MissingHostConf missing, const RootFile& rules) {
  auto refuse = [&](const std::string& what) {
    return ConfigError(path + ": refused as root's settings: " + what);
  };
  std::size_t slash = path.rfind('/');
  if (path.empty() || path[0] != '/' || slash + 1 == path.size())
    throw ConfigError(path + ": " + rules.kind + " must be named by the absolute path of a file, as " +
                      rules.example_path);
  std::string dir = slash == 0 ? "/" : path.substr(0, slash), name = path.substr(slash + 1);
  auto gone = [&] { return errno == ENOENT && missing == MissingHostConf::defaults; };

  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) {
    if (gone()) return std::nullopt;
    throw ConfigError(path + ": cannot open its directory: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(dir_fd.get(), &st) != 0) throw ConfigError(path + ": cannot stat its directory: " + std::strerror(errno));
  if (std::string why = untrusted(st, "its directory " + dir, dir); !why.empty()) throw refuse(why);

  // O_NONBLOCK: a FIFO in its place must not hang the open; fstat refuses it.
  Fd fd(::openat(dir_fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (gone()) return std::nullopt;
    if (errno == ELOOP) throw refuse("it is a symbolic link; put the file itself there, owned by root");
    if (errno == ENOENT) throw ConfigError(path + ": no such file; create it" + rules.missing_hint);
    throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  }
  if (::fstat(fd.get(), &st) != 0) throw ConfigError(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw refuse("it is not a regular file");
  if (std::string why = untrusted(st, "it", path); !why.empty()) throw refuse(why);
  if (rules.secret && (st.st_mode & (S_IRGRP | S_IROTH)) != 0)
    throw refuse("it is readable by group or others (mode " + mode_text(st.st_mode) + "), and it holds secrets; chmod "
                 "go-rwx " + path);

  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > rules.max_bytes)
      throw ConfigError(path + ": larger than " + std::to_string(rules.max_bytes >> 10) + " KiB; " + rules.kind +
                        " is a few lines");
  }
  return text;
}

namespace {

// docker.conf's place of `key`: "docker.conf:6:1: " (or the file alone).
std::string at_key(const DockerConf& conf, const std::string& key) {
  std::string origin = conf.origin.empty() ? "docker.conf" : conf.origin;
  auto it = conf.positions.find(key);
  if (it == conf.positions.end()) return origin + ": ";
  return origin + ":" + std::to_string(it->second.first) + ":" + std::to_string(it->second.second) + ": ";
}

// 17179869184 -> "16g": the largest unit that divides it.
std::string size_text(std::int64_t bytes) {
  const std::pair<const char*, std::int64_t> units[] = {
      {"t", std::int64_t{1} << 40}, {"g", std::int64_t{1} << 30}, {"m", std::int64_t{1} << 20}, {"k", 1024}};
  for (const auto& [unit, factor] : units)
    if (bytes > 0 && bytes % factor == 0) return std::to_string(bytes / factor) + unit;
  return std::to_string(bytes);
}

}  // namespace

std::int64_t physical_memory_bytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0 || pages > limits::memory_bytes / page_size) return limits::memory_bytes;
  return static_cast<std::int64_t>(pages) * page_size;
}

HostConf parse_host_conf(std::string_view text, const std::string& origin) {
  toml::table table = key_table::parse_toml(text, origin, "host.conf", "memory = \"8g\"");
  HostConf host;
  host.origin = origin;
  for (const auto& [key, node] : table) {
    const KeySpec& spec = key_table::find_key(key, keys(), origin);
    std::string name(key.str());
    spec.read(Reader{origin, name, node, spec.example}, host);
  }
  return host;
}

HostConf load_host_conf(const std::string& path, MissingHostConf missing) {
  RootFile rules;
  rules.missing_hint = ", or unset CE_RUN_HOST_CONF to use " + std::string(default_host_conf);
  std::optional<std::string> text = read_root_file(path, missing, rules);
  if (!text) {
    HostConf defaults;
    defaults.origin = path;
    return defaults;
  }
  return parse_host_conf(*text, path);
}

HostConf load_host_conf() {
  const char* chosen = std::getenv("CE_RUN_HOST_CONF");
  if (chosen != nullptr && *chosen != '\0') return load_host_conf(chosen, MissingHostConf::error);
  return load_host_conf(default_host_conf, MissingHostConf::defaults);
}

void apply_host_policy(DockerConf& conf, const HostConf& host) {
  if (conf.memory_bytes == 0) {
    conf.memory_bytes = std::min(host.memory_bytes, host.max_memory_bytes);
  } else if (conf.memory_bytes > host.max_memory_bytes) {
    throw ConfigError(at_key(conf, "memory") + "'memory' = " + size_text(conf.memory_bytes) +
                      " is more than root allows (max_memory = " + size_text(host.max_memory_bytes) + " in " +
                      host.origin + "); ask for less, or ask root to raise max_memory");
  }
  if (conf.pids == 0) {
    conf.pids = std::min(host.pids, host.max_pids);
  } else if (conf.pids > host.max_pids) {
    throw ConfigError(at_key(conf, "pids") + "'pids' = " + std::to_string(conf.pids) +
                      " is more than root allows (max_pids = " + std::to_string(host.max_pids) + " in " +
                      host.origin + "); ask for fewer, or ask root to raise max_pids");
  }
  // Anything but the two built-in modes must be root's choice: Docker also
  // finds a network by a prefix of its ID, so a name that looks harmless can
  // stand for the host's network.
  bool allowed = conf.network == "none" || conf.network == "bridge" ||
                 std::find(host.networks.begin(), host.networks.end(), conf.network) != host.networks.end();
  if (!allowed && (conf.network == "host" || !valid_network_name(conf.network)))
    throw ConfigError(at_key(conf, "network") + "'network' = \"" + escaped(conf.network) +
                      "\" is not allowed: docker.conf alone may choose \"none\" or \"bridge\", and host.conf may "
                      "allow other networks, never the host's or another container's");
  if (!allowed) {
    std::string shown = escaped(conf.network);
    throw ConfigError(at_key(conf, "network") + "'network' = \"" + shown +
                      "\" is not allowed: docker.conf alone may choose \"none\" or \"bridge\"; root can allow \"" +
                      shown + "\" in " + host.origin + " (networks = [\"" + shown + "\"])");
  }
}

}  // namespace ce::runner
