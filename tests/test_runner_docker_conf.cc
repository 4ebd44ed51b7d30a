#include <catch2/catch.hpp>

#include "runner/docker_conf.h"

using namespace ce::runner;

namespace {
std::string error_of(std::string_view text) {
  try {
    parse_docker_conf(text, "docker.conf");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("the seed's docker.conf with only an image is accepted, with the defaults", "[docker_conf]") {
  auto conf = parse_docker_conf("image = \"debian:bookworm\"\n", "docker.conf");
  CHECK(conf.image == "debian:bookworm");
  CHECK(conf.name.empty());
  CHECK(conf.network == "none");
  CHECK(conf.user.empty());
  CHECK(conf.nano_cpus == 0);
  CHECK(conf.memory_bytes == 0);
  CHECK(conf.pids == 0);
  CHECK(conf.timeout_seconds == 0);
}

TEST_CASE("every key is read", "[docker_conf]") {
  auto conf = parse_docker_conf(
      "# base\n"
      "image = 'busybox:latest' # local\n"
      "name = \"hello-1\"\n"
      "workdir = \"/work\"\n"
      "user = \"root\"\n"
      "network = \"bridge\"\n"
      "cpus = 1.5\n"
      "memory = \"512m\"\n"
      "pids = 100\n"
      "timeout = \"2h\"\n"
      "[env]\n"
      "OMP_NUM_THREADS = \"4\"\n"
      "SEED = 42\n",
      "docker.conf");
  CHECK(conf.image == "busybox:latest");
  CHECK(conf.name == "hello-1");
  CHECK(conf.workdir == "/work");
  CHECK(conf.user == "root");
  CHECK(conf.network == "bridge");
  CHECK(conf.nano_cpus == 1500000000);
  CHECK(conf.memory_bytes == 512LL * 1024 * 1024);
  CHECK(conf.pids == 100);
  CHECK(conf.timeout_seconds == 7200);
  CHECK(conf.env == std::map<std::string, std::string>{{"OMP_NUM_THREADS", "4"}, {"SEED", "42"}});
  CHECK(parse_docker_conf("image = \"x\"\ncpus = 2\nmemory = 1073741824\ntimeout = 90\n", "docker.conf").nano_cpus ==
        2000000000);
}

TEST_CASE("an unknown key names the nearest known key and its place", "[docker_conf]") {
  CHECK(error_of("image = \"x\"\n  imgae = \"y\"\n") == "docker.conf:2:3: unknown key 'imgae'; did you mean 'image'?");
  CHECK(error_of("image = \"x\"\nmemroy = \"1g\"\n") == "docker.conf:2:1: unknown key 'memroy'; did you mean 'memory'?");
  CHECK(error_of("image = \"x\"\ncompletely_different = 1\n") ==
        "docker.conf:2:1: unknown key 'completely_different'; known keys: image, name, workdir, env, user, "
        "network, cpus, memory, pids, timeout");
}

TEST_CASE("a wrong type or value says what was expected, with an example", "[docker_conf]") {
  CHECK(error_of("image = 42\n") ==
        "docker.conf:1:9: 'image' must be a string, not an integer; e.g. image = \"debian:bookworm\"");
  CHECK(error_of("image = \"x\"\ncpus = \"2\"\n") ==
        "docker.conf:2:8: 'cpus' must be a number, not a string; e.g. cpus = 2.5");
  CHECK(error_of("image = \"x\"\nmemory = \"2 gigs\"\n") ==
        "docker.conf:2:10: 'memory' = \"2 gigs\" is not a size; e.g. memory = \"4g\" (units k, m, g, t)");
  CHECK(error_of("image = \"x\"\ntimeout = \"soon\"\n") ==
        "docker.conf:2:11: 'timeout' = \"soon\" is not a duration; e.g. timeout = \"2h\" (units s, m, h, d)");
  CHECK(error_of("image = \"x\"\nworkdir = \"relative\"\n") ==
        "docker.conf:2:11: 'workdir' must be an absolute path in the container; e.g. workdir = \"/work\"");
  CHECK(error_of("image = \"x\"\nname = \"a b\"\n") ==
        "docker.conf:2:8: 'name' may hold only letters, digits, '.', '_' and '-'; e.g. name = \"segmentation\"");
  CHECK(error_of("image = \"x\"\npids = 0\n") == "docker.conf:2:8: 'pids' must be more than 0; e.g. pids = 512");
  CHECK(error_of("image = \"x\"\n[env]\nA = [1]\n") ==
        "docker.conf:3:5: 'A' must be a string, not an array; e.g. env = { OMP_NUM_THREADS = \"4\" }");
}

TEST_CASE("a missing image is an error with the fix", "[docker_conf]") {
  CHECK(error_of("name = \"x\"\n") ==
        "docker.conf:1:1: the required key 'image' is missing; add e.g. image = \"debian:bookworm\"");
}

TEST_CASE("TOML syntax errors carry line and column", "[docker_conf]") {
  auto e = error_of("image = \"unterminated\n");
  CHECK_THAT(e, Catch::StartsWith("docker.conf:1:"));
  CHECK_THAT(e, Catch::EndsWith("; docker.conf is TOML, e.g. image = \"debian:bookworm\""));
}

TEST_CASE("sizes and durations", "[docker_conf]") {
  CHECK(parse_size("100") == 100);
  CHECK(parse_size("2k") == 2048);
  CHECK(parse_size("1G") == 1024LL * 1024 * 1024);
  CHECK(parse_size("3mb") == 3LL * 1024 * 1024);
  CHECK_FALSE(parse_size("-1m"));
  CHECK_FALSE(parse_size("m"));
  CHECK_FALSE(parse_size("99999999999999999999g"));
  CHECK(parse_duration("90") == 90);
  CHECK(parse_duration("15m") == 900);
  CHECK(parse_duration("1d") == 86400);
  CHECK_FALSE(parse_duration("1w"));
}

TEST_CASE("every number is bounded, so no deadline or limit can overflow", "[docker_conf]") {
  CHECK(error_of("image = \"x\"\ntimeout = 9223372036854775807\n") ==
        "docker.conf:2:11: 'timeout' must be at most 365d; e.g. timeout = \"2h\" (units s, m, h, d)");
  CHECK(error_of("image = \"x\"\ntimeout = \"106752d\"\n") ==
        "docker.conf:2:11: 'timeout' must be at most 365d; e.g. timeout = \"2h\" (units s, m, h, d)");
  CHECK(parse_docker_conf("image = \"x\"\ntimeout = \"365d\"\n", "docker.conf").timeout_seconds == 365 * 86400);
  CHECK(error_of("image = \"x\"\npids = 9223372036854775807\n") ==
        "docker.conf:2:8: 'pids' must be at most 4194304, the kernel's limit; e.g. pids = 512");
  CHECK(error_of("image = \"x\"\nmemory = 9223372036854775807\n") ==
        "docker.conf:2:10: 'memory' must be at most 1024t; e.g. memory = \"4g\" (units k, m, g, t)");
  CHECK(error_of("image = \"x\"\ncpus = 1e300\n") == "docker.conf:2:8: 'cpus' must be at most 4096; e.g. cpus = 2.5");
  CHECK(error_of("image = \"x\"\ncpus = nan\n") == "docker.conf:2:8: 'cpus' must be more than 0; e.g. cpus = 2.5");
}
