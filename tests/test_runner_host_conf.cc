#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/host_conf.h"
#include "support/engine_fixture.h"

using namespace ce::runner;
using ce::test::TempDir;

namespace {

std::string error_of(std::string_view text) {
  try {
    parse_host_conf(text, "host.conf");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

std::string load_error_of(const std::string& path, MissingHostConf missing = MissingHostConf::defaults) {
  try {
    load_host_conf(path, missing);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

// A host.conf as root would make it: owned by root, 0644, in a root-owned
// 0755 directory. The cases then spoil one property each.
std::string root_file(const TempDir& dir, const std::string& text, const std::string& name = "host.conf") {
  REQUIRE(::chown(dir.str().c_str(), 0, 0) == 0);
  REQUIRE(::chmod(dir.str().c_str(), 0755) == 0);
  std::string path = dir.str() + "/" + name;
  std::ofstream(path) << text;
  REQUIRE(::chown(path.c_str(), 0, 0) == 0);
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  return path;
}

// CE_RUN_HOST_CONF for one case, restored after it.
class HostConfVariable {
 public:
  explicit HostConfVariable(const std::string& value) {
    if (const char* old = std::getenv("CE_RUN_HOST_CONF")) old_ = old;
    ::setenv("CE_RUN_HOST_CONF", value.c_str(), 1);
  }
  ~HostConfVariable() {
    if (old_)
      ::setenv("CE_RUN_HOST_CONF", old_->c_str(), 1);
    else
      ::unsetenv("CE_RUN_HOST_CONF");
  }

 private:
  std::optional<std::string> old_;
};

DockerConf docker_conf(const std::string& text) { return parse_docker_conf(text, "docker.conf"); }

std::string policy_error_of(DockerConf conf, const HostConf& host) {
  try {
    apply_host_policy(conf, host);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

const std::int64_t g = std::int64_t{1} << 30;

}  // namespace

TEST_CASE("without host.conf the limits are 8g of memory and 4096 processes, at most the machine's memory",
          "[host_conf][conf]") {
  HostConf host;
  CHECK(host.origin == "/etc/ce-run/host.conf");
  CHECK(host.memory_bytes == 8 * g);
  CHECK(host.pids == 4096);
  CHECK(host.max_pids == 32768);
  CHECK(host.max_memory_bytes == physical_memory_bytes());
  CHECK(physical_memory_bytes() == static_cast<std::int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE));
  CHECK(host.gfs.empty());
  CHECK(host.networks.empty());
}

TEST_CASE("every host.conf key is read", "[host_conf][conf]") {
  auto host = parse_host_conf(
      "# root's\n"
      "gfs = [\"/data/gfs\", \"/scratch/gfs\"]\n"
      "networks = [\"lab\", \"gpu-cluster.1\"]\n"
      "memory = \"2g\"\n"
      "max_memory = 68719476736\n"
      "pids = 100\n"
      "max_pids = 1000\n",
      "/etc/ce-run/host.conf");
  CHECK(host.origin == "/etc/ce-run/host.conf");
  CHECK(host.gfs == std::vector<std::string>{"/data/gfs", "/scratch/gfs"});
  CHECK(host.networks == std::vector<std::string>{"lab", "gpu-cluster.1"});
  CHECK(host.memory_bytes == 2 * g);
  CHECK(host.max_memory_bytes == 64 * g);
  CHECK(host.pids == 100);
  CHECK(host.max_pids == 1000);
  CHECK(parse_host_conf("", "host.conf").memory_bytes == 8 * g);
}

TEST_CASE("an unknown host.conf key names the nearest known key and its place", "[host_conf][conf]") {
  CHECK(error_of("memroy = \"1g\"\n") == "host.conf:1:1: unknown key 'memroy'; did you mean 'memory'?");
  CHECK(error_of("\n  max_pid = 5\n") == "host.conf:2:3: unknown key 'max_pid'; did you mean 'max_pids'?");
  CHECK(error_of("completely_different = 1\n") ==
        "host.conf:1:1: unknown key 'completely_different'; known keys: gfs, networks, memory, max_memory, pids, "
        "max_pids, swarm, registry, swarm_attempts");
}

TEST_CASE("host.conf's fleet keys: swarm, registry and swarm_attempts, each checked where it is", "[host_conf][conf]") {
  auto h = parse_host_conf("swarm = true\nregistry = \"10.0.0.1:5000\"\nswarm_attempts = 5\n", "host.conf");
  CHECK(h.swarm);
  CHECK(h.registry == "10.0.0.1:5000");
  CHECK(h.swarm_attempts == 5);
  auto defaults = parse_host_conf("", "host.conf");
  CHECK_FALSE(defaults.swarm);
  CHECK(defaults.registry.empty());
  CHECK(defaults.swarm_attempts == 3);
  CHECK(error_of("swarm = \"yes\"\n") == "host.conf:1:9: 'swarm' must be true or false, not a string; e.g. swarm = true");
  CHECK_THAT(error_of("registry = \"https://r/\"\n"),
             Catch::StartsWith("host.conf:1:12: 'registry' holds \"https://r/\", not HOST or HOST:PORT"));
  CHECK_THAT(error_of("swarm_attempts = 0\n"), Catch::StartsWith("host.conf:1:18: 'swarm_attempts' must be from 1 to 10"));
}

TEST_CASE("a wrong host.conf value says what was expected, with an example", "[host_conf][conf]") {
  CHECK(error_of("pids = \"many\"\n") == "host.conf:1:8: 'pids' must be an integer, not a string; e.g. pids = 4096");
  CHECK(error_of("max_pids = 0\n") == "host.conf:1:12: 'max_pids' must be more than 0; e.g. max_pids = 32768");
  CHECK(error_of("max_pids = 9999999\n") ==
        "host.conf:1:12: 'max_pids' must be at most 4194304, the kernel's limit; e.g. max_pids = 32768");
  CHECK(error_of("memory = \"lots\"\n") ==
        "host.conf:1:10: 'memory' = \"lots\" is not a size; e.g. memory = \"8g\" (units k, m, g, t)");
  CHECK(error_of("max_memory = \"1m\"\n") ==
        "host.conf:1:14: 'max_memory' must be at least 6m, the engine's minimum; e.g. max_memory = \"64g\" (units k, "
        "m, g, t)");
  CHECK(error_of("max_memory = true\n") ==
        "host.conf:1:14: 'max_memory' must be a size, not a boolean; e.g. max_memory = \"64g\" (units k, m, g, t)");
  CHECK(error_of("gfs = \"/data/gfs\"\n") ==
        "host.conf:1:7: 'gfs' must be an array of strings, not a string; e.g. gfs = [\"/data/ce-run/gfs\"]");
  CHECK(error_of("gfs = [\"/a\", \"relative\"]\n") ==
        "host.conf:1:14: 'gfs' holds \"relative\", not an absolute path; e.g. gfs = [\"/data/ce-run/gfs\"]");
  CHECK(error_of("gfs = [1]\n") == "host.conf:1:8: 'gfs' must hold strings, not an integer; e.g. gfs = [\"/data/ce-run/gfs\"]");
  CHECK(error_of("networks = [\"\"]\n") == "host.conf:1:13: 'networks' must not hold an empty string; e.g. networks = [\"lab\"]");
  CHECK_THAT(error_of("memory = \"1g\"\nmemory = \"2g\"\n"),
             Catch::StartsWith("host.conf:2:") && Catch::EndsWith("; host.conf is TOML, e.g. memory = \"8g\""));
}

TEST_CASE("host.conf cannot allow the host's network or another container's", "[host_conf][conf][security]") {
  CHECK(error_of("networks = [\"lab\", \"host\"]\n") ==
        "host.conf:1:20: 'networks' holds \"host\", which would give computations the host's network; e.g. networks = "
        "[\"lab\"]");
  CHECK(error_of("networks = [\"container:db\"]\n") ==
        "host.conf:1:13: 'networks' holds \"container:db\"; a name with ':' (as container:NAME) would give computations "
        "another container's network; e.g. networks = [\"lab\"]");
  CHECK(error_of("networks = [\"a/b\"]\n") ==
        "host.conf:1:13: 'networks' holds \"a/b\", not a network name (letters, digits, '_', '.' and '-', starting "
        "with a letter or digit); e.g. networks = [\"lab\"]");
}

TEST_CASE("a host.conf only root can change is read", "[host_conf][conf][security]") {
  TempDir dir;
  std::string path = root_file(dir, "memory = \"1g\"\nnetworks = [\"lab\"]\n");
  auto host = load_host_conf(path, MissingHostConf::error);
  CHECK(host.origin == path);
  CHECK(host.memory_bytes == g);
  CHECK(host.networks == std::vector<std::string>{"lab"});
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  CHECK(load_host_conf(path, MissingHostConf::error).memory_bytes == g);
  CHECK(load_error_of(dir.str() + "/broken.conf") == "no error");  // missing: the defaults
  std::string broken = root_file(dir, "memory = 1\n", "broken.conf");
  CHECK(load_error_of(broken) ==
        broken + ":1:10: 'memory' must be at least 6m, the engine's minimum; e.g. memory = \"8g\" (units k, m, g, t)");
}

TEST_CASE("a missing host.conf means the defaults, unless CE_RUN_HOST_CONF names it", "[host_conf][conf][security]") {
  TempDir dir;
  std::string absent = dir.str() + "/host.conf";
  auto host = load_host_conf(absent, MissingHostConf::defaults);
  CHECK(host.origin == absent);
  CHECK(host.memory_bytes == 8 * g);
  CHECK(load_host_conf(dir.str() + "/no/such/dir/host.conf", MissingHostConf::defaults).pids == 4096);
  CHECK(load_error_of(absent, MissingHostConf::error) ==
        absent + ": no such file; create it, or unset CE_RUN_HOST_CONF to use /etc/ce-run/host.conf");
  {
    HostConfVariable variable(absent);
    CHECK_THROWS_WITH(load_host_conf(),
                      absent + ": no such file; create it, or unset CE_RUN_HOST_CONF to use /etc/ce-run/host.conf");
  }
  std::string path = root_file(dir, "pids = 77\n");
  HostConfVariable variable(path);
  CHECK(load_host_conf().pids == 77);
  CHECK(load_error_of("relative/host.conf") ==
        "relative/host.conf: host.conf must be named by the absolute path of a file, as /etc/ce-run/host.conf");
}

TEST_CASE("a host.conf others can write is refused, saying what to fix", "[host_conf][conf][security]") {
  TempDir dir;
  std::string path = root_file(dir, "max_memory = \"1024t\"\n");
  REQUIRE(::chmod(path.c_str(), 0664) == 0);
  CHECK(load_error_of(path) == path + ": refused as root's settings: it is writable by group or others (mode 0664); "
                                      "chmod go-w " + path);
  REQUIRE(::chmod(path.c_str(), 0646) == 0);
  CHECK(load_error_of(path) == path + ": refused as root's settings: it is writable by group or others (mode 0646); "
                                      "chmod go-w " + path);
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  REQUIRE(::chown(path.c_str(), 4242, 0) == 0);
  CHECK(load_error_of(path) == path + ": refused as root's settings: it belongs to uid 4242, not root; make it "
                                      "root's: chown root " + path);
}

TEST_CASE("a host.conf in a directory others can write is refused", "[host_conf][conf][security]") {
  TempDir dir;
  std::string path = root_file(dir, "max_pids = 4194304\n");
  REQUIRE(::chmod(dir.str().c_str(), 0775) == 0);
  CHECK(load_error_of(path) == path + ": refused as root's settings: its directory " + dir.str() +
                                   " is writable by group or others (mode 0775); chmod go-w " + dir.str());
  REQUIRE(::chmod(dir.str().c_str(), 01777) == 0);
  CHECK(load_error_of(path) == path + ": refused as root's settings: its directory " + dir.str() +
                                   " is writable by group or others (mode 1777); chmod go-w " + dir.str());
  REQUIRE(::chmod(dir.str().c_str(), 0755) == 0);
  REQUIRE(::chown(dir.str().c_str(), 4242, 4242) == 0);
  CHECK(load_error_of(path) == path + ": refused as root's settings: its directory " + dir.str() +
                                   " belongs to uid 4242, not root; make it root's: chown root " + dir.str());
  // Also when the file is missing: whoever owns the directory could add it.
  CHECK(load_error_of(dir.str() + "/other.conf") ==
        dir.str() + "/other.conf: refused as root's settings: its directory " + dir.str() +
            " belongs to uid 4242, not root; make it root's: chown root " + dir.str());
  REQUIRE(::chown(dir.str().c_str(), 0, 0) == 0);
}

TEST_CASE("a host.conf that is a symbolic link or not a regular file is refused", "[host_conf][conf][security]") {
  TempDir dir;
  std::string target = root_file(dir, "memory = \"1g\"\n", "real.conf");
  std::string link = dir.str() + "/host.conf";
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  CHECK(load_error_of(link) ==
        link + ": refused as root's settings: it is a symbolic link; put the file itself there, owned by root");
  std::string fifo = dir.str() + "/fifo.conf";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK(load_error_of(fifo) == fifo + ": refused as root's settings: it is not a regular file");
  std::string directory = dir.str() + "/dir.conf";
  REQUIRE(::mkdir(directory.c_str(), 0755) == 0);
  CHECK(load_error_of(directory) == directory + ": refused as root's settings: it is not a regular file");
}

TEST_CASE("docker.conf without memory or pids gets host.conf's defaults, at most its maximum",
          "[host_conf][conf][security]") {
  HostConf host;
  host.max_memory_bytes = 64 * g;
  DockerConf conf = docker_conf("image = \"x\"\n");
  apply_host_policy(conf, host);
  CHECK(conf.memory_bytes == 8 * g);
  CHECK(conf.pids == 4096);

  host.memory_bytes = 16 * g;
  host.max_memory_bytes = 4 * g;  // a small machine
  host.pids = 4096;
  host.max_pids = 1000;
  conf = docker_conf("image = \"x\"\n");
  apply_host_policy(conf, host);
  CHECK(conf.memory_bytes == 4 * g);
  CHECK(conf.pids == 1000);

  conf = docker_conf("image = \"x\"\nmemory = \"512m\"\npids = 10\n");
  apply_host_policy(conf, host);
  CHECK(conf.memory_bytes == 512LL * 1024 * 1024);
  CHECK(conf.pids == 10);
}

TEST_CASE("docker.conf cannot ask for more memory or processes than host.conf allows", "[host_conf][conf][security]") {
  HostConf host;
  host.max_memory_bytes = 16 * g;
  host.max_pids = 32768;
  CHECK(policy_error_of(docker_conf("image = \"x\"\nmemory = \"64g\"\n"), host) ==
        "docker.conf:2:1: 'memory' = 64g is more than root allows (max_memory = 16g in /etc/ce-run/host.conf); ask "
        "for less, or ask root to raise max_memory");
  CHECK(policy_error_of(docker_conf("image = \"x\"\nmemory = 17179869185\n"), host) ==
        "docker.conf:2:1: 'memory' = 17179869185 is more than root allows (max_memory = 16g in "
        "/etc/ce-run/host.conf); ask for less, or ask root to raise max_memory");
  CHECK(policy_error_of(docker_conf("image = \"x\"\nmemory = \"16g\"\n"), host) == "no error");
  CHECK(policy_error_of(docker_conf("image = \"x\"\n\n  pids = 40000\n"), host) ==
        "docker.conf:3:3: 'pids' = 40000 is more than root allows (max_pids = 32768 in /etc/ce-run/host.conf); ask "
        "for fewer, or ask root to raise max_pids");
  CHECK(policy_error_of(docker_conf("image = \"x\"\npids = 32768\n"), host) == "no error");
}

TEST_CASE("docker.conf may name a network besides none and bridge only when host.conf lists it",
          "[host_conf][conf][security]") {
  HostConf host;
  CHECK(policy_error_of(docker_conf("image = \"x\"\nnetwork = \"none\"\n"), host) == "no error");
  CHECK(policy_error_of(docker_conf("image = \"x\"\nnetwork = \"bridge\"\n"), host) == "no error");
  CHECK(policy_error_of(docker_conf("image = \"x\"\nnetwork = \"lab\"\n"), host) ==
        "docker.conf:2:1: 'network' = \"lab\" is not allowed: docker.conf alone may choose \"none\" or \"bridge\"; "
        "root can allow \"lab\" in /etc/ce-run/host.conf (networks = [\"lab\"])");
  host.networks = {"lab"};
  CHECK(policy_error_of(docker_conf("image = \"x\"\nnetwork = \"lab\"\n"), host) == "no error");
  // Docker finds a network by a prefix of its ID too: only names root listed.
  CHECK(policy_error_of(docker_conf("image = \"x\"\nnetwork = \"3f2a9c\"\n"), host) ==
        "docker.conf:2:1: 'network' = \"3f2a9c\" is not allowed: docker.conf alone may choose \"none\" or \"bridge\"; "
        "root can allow \"3f2a9c\" in /etc/ce-run/host.conf (networks = [\"3f2a9c\"])");
  // A DockerConf not read from a file is held to the same rules.
  DockerConf made;
  made.image = "x";
  made.network = "host";
  CHECK(policy_error_of(made, host) ==
        "docker.conf: 'network' = \"host\" is not allowed: docker.conf alone may choose \"none\" or \"bridge\", and "
        "host.conf may allow other networks, never the host's or another container's");
  made.network = "container:3f2a9c";
  CHECK_THAT(policy_error_of(made, host), Catch::EndsWith("never the host's or another container's"));
}
