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

TEST_CASE("the seed's docker.conf with only an image is accepted, with the defaults", "[docker_conf][conf]") {
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

TEST_CASE("every key is read", "[docker_conf][conf]") {
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

TEST_CASE("an unknown key names the nearest known key and its place", "[docker_conf][conf]") {
  CHECK(error_of("image = \"x\"\n  imgae = \"y\"\n") == "docker.conf:2:3: unknown key 'imgae'; did you mean 'image'?");
  CHECK(error_of("image = \"x\"\nmemroy = \"1g\"\n") == "docker.conf:2:1: unknown key 'memroy'; did you mean 'memory'?");
  CHECK(error_of("image = \"x\"\ncompletely_different = 1\n") ==
        "docker.conf:2:1: unknown key 'completely_different'; known keys: image, name, workdir, env, user, "
        "network, cpus, memory, pids, timeout, placement");
}

TEST_CASE("a wrong type or value says what was expected, with an example", "[docker_conf][conf]") {
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

TEST_CASE("a missing image is an error with the fix", "[docker_conf][conf]") {
  CHECK(error_of("name = \"x\"\n") ==
        "docker.conf:1:1: the required key 'image' is missing; add e.g. image = \"debian:bookworm\"");
}

TEST_CASE("TOML syntax errors carry line and column", "[docker_conf][conf]") {
  auto e = error_of("image = \"unterminated\n");
  CHECK_THAT(e, Catch::StartsWith("docker.conf:1:"));
  CHECK_THAT(e, Catch::EndsWith("; docker.conf is TOML, e.g. image = \"debian:bookworm\""));
}

TEST_CASE("sizes and durations", "[docker_conf][conf]") {
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

TEST_CASE("every number is bounded, so no deadline or limit can overflow", "[docker_conf][conf]") {
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

namespace {
const std::string hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
}  // namespace

TEST_CASE("image references of Docker's grammar are accepted", "[docker_conf][conf][security]") {
  for (const std::string& image :
       {std::string("busybox:latest"), std::string("debian:bookworm"), std::string("localhost:5000/a/b:c"),
        "registry.example.com/x/y@sha256:" + hex64, "sha256:" + hex64, std::string("x"),
        std::string("ce-run-test/no-such-image:1"), std::string("ce-run-test/roundtrip:stage-1"),
        std::string("a__b/c--d/e.f_g"), std::string("192.168.1.10:5000/team/tool:V1.2_rc-3"),
        std::string("localhost/x"), "busybox:latest@sha256:" + hex64, std::string("Registry.Example.COM/x")}) {
    INFO(image);
    CHECK(image_reference_problem(image) == std::nullopt);
    CHECK(parse_docker_conf("image = \"" + image + "\"\n", "docker.conf").image == image);
  }
}

TEST_CASE("hostile image references are refused, saying what is wrong", "[docker_conf][conf][security]") {
  const std::string holds_only = "; a reference holds only letters, digits, '.', '_', '-', '/', ':' and '@'";
  CHECK(image_reference_problem("../containers/abc") == "it has the path component '..'; a reference is not a path");
  CHECK(image_reference_problem("a/../b") == "it has the path component '..'; a reference is not a path");
  CHECK(image_reference_problem("./x") == "it has the path component '.'; a reference is not a path");
  CHECK(image_reference_problem("busybox\r\nX") == "it holds '\\r'" + holds_only);
  CHECK(image_reference_problem("a b") == "it holds ' '" + holds_only);
  CHECK(image_reference_problem("a?x") == "it holds '?'" + holds_only);
  CHECK(image_reference_problem("a#x") == "it holds '#'" + holds_only);
  CHECK(image_reference_problem("a%2fx") == "it holds '%'" + holds_only);
  CHECK(image_reference_problem("a\x1b[31m") == "it holds '\\x1b'" + holds_only);
  CHECK(image_reference_problem("") == "it is empty");
  CHECK(image_reference_problem("UPPER") ==
        "its path component 'UPPER' has upper-case letters; repository names are lower case");
  CHECK(image_reference_problem("Team/tool") ==
        "its path component 'Team' has upper-case letters; repository names are lower case");
  CHECK(image_reference_problem("a//b") == "it has an empty path component (as in 'a//b', or a '/' at an end)");
  CHECK(image_reference_problem("/etc") == "it has an empty path component (as in 'a//b', or a '/' at an end)");
  CHECK(image_reference_problem("a.-b") ==
        "its path component 'a.-b' is not lower-case letters and digits joined by '.', '_', '__' or '-'");
  CHECK(image_reference_problem("a___b") ==
        "its path component 'a___b' is not lower-case letters and digits joined by '.', '_', '__' or '-'");
  CHECK(image_reference_problem("busybox:") ==
        "its tag '' is not 1 to 128 letters, digits, '_', '.' or '-' starting with a letter, digit or '_'");
  CHECK(image_reference_problem("busybox:" + std::string(129, 'a')) ==
        "its tag '" + std::string(120, 'a') +
            "...' is not 1 to 128 letters, digits, '_', '.' or '-' starting with a letter, digit or '_'");
  CHECK(image_reference_problem("busybox@sha256:abc") ==
        "its digest 'sha256:abc' is not sha256: and 64 lower-case hex digits (or sha384: and 96, sha512: and 128)");
  CHECK(image_reference_problem("busybox@md5:" + hex64.substr(0, 32)).has_value());
  CHECK(image_reference_problem("busybox@sha256:" + hex64 + "@sha256:" + hex64).has_value());
  CHECK(image_reference_problem("sha256:abc") == "an image ID is sha256: and 64 lower-case hex digits");
  CHECK(image_reference_problem(hex64) == "a name of 64 hex digits is an image ID; write it as sha256:" + hex64);
  CHECK(image_reference_problem("bad_host.example.com/x") ==
        "its registry 'bad_host.example.com' is not a host name (letters, digits and '-', in parts joined by '.')");
  CHECK(image_reference_problem("localhost:port/x") == "its registry port 'port' is not a number");
  CHECK(image_reference_problem(":latest") == "it has no name before the tag or digest");
  CHECK(image_reference_problem(std::string(256, 'a')) == "its name is 256 characters long; at most 255 are allowed");
  CHECK(image_reference_problem(std::string(255, 'a')) == std::nullopt);
}

TEST_CASE("a refused image is shown escaped, at its value's place, with an example", "[docker_conf][conf][security]") {
  CHECK(error_of("image = \"busybox\\r\\nX\"\n") ==
        "docker.conf:1:9: 'image' = \"busybox\\r\\nX\" is not an image reference: it holds '\\r'; a reference holds "
        "only letters, digits, '.', '_', '-', '/', ':' and '@'; e.g. image = \"debian:bookworm\"");
  CHECK(error_of("name = \"n\"\nimage = '../containers/abc'\n") ==
        "docker.conf:2:9: 'image' = \"../containers/abc\" is not an image reference: it has the path component "
        "'..'; a reference is not a path; e.g. image = \"debian:bookworm\"");
  CHECK(error_of("image = \"a\\u001b[2J\"\n") ==
        "docker.conf:1:9: 'image' = \"a\\x1b[2J\" is not an image reference: it holds '\\x1b'; a reference holds "
        "only letters, digits, '.', '_', '-', '/', ':' and '@'; e.g. image = \"debian:bookworm\"");
  CHECK(error_of("image = \"\"\n") == "docker.conf:1:9: 'image' must not be empty; e.g. image = \"debian:bookworm\"");
  for (const char* hostile : {"image = \"a?x\"\n", "image = \"UPPER\"\n", "image = \"a/../b\"\n", "image = \"a b\"\n"})
    CHECK_THAT(error_of(hostile), Catch::StartsWith("docker.conf:1:9: 'image' = ") &&
                                      Catch::EndsWith("; e.g. image = \"debian:bookworm\""));
}

TEST_CASE("environment names must be names, and values hold no NUL", "[docker_conf][conf][security]") {
  CHECK(error_of("image = \"x\"\n[env]\n\"1X\" = \"a\"\n") ==
        "docker.conf:3:1: '1X' is not an environment variable name: letters, digits and '_', not starting with a digit");
  CHECK(error_of("image = \"x\"\nenv = { \"A=B\" = \"a\" }\n") ==
        "docker.conf:2:9: 'A=B' is not an environment variable name: letters, digits and '_', not starting with a "
        "digit");
  CHECK(error_of("image = \"x\"\n[env]\n\"A\\nB\" = \"a\"\n") ==
        "docker.conf:3:1: 'A\\nB' is not an environment variable name: letters, digits and '_', not starting with a "
        "digit");
  CHECK(error_of("image = \"x\"\n[env]\n\"\" = \"a\"\n") ==
        "docker.conf:3:1: '' is not an environment variable name: letters, digits and '_', not starting with a digit");
  CHECK(error_of("image = \"x\"\n[env]\nA = \"x\\u0000y\"\n") ==
        "docker.conf:3:5: 'A' must not hold a NUL character; e.g. env = { OMP_NUM_THREADS = \"4\" }");
  CHECK(parse_docker_conf("image = \"x\"\n[env]\n_a1 = \"\"\n", "docker.conf").env.at("_a1").empty());
}

TEST_CASE("the environment names ce-run reserves are refused at the name", "[docker_conf][conf][security]") {
  CHECK(error_of("image = \"x\"\n[env]\nPATH = \"/opt/bin:/usr/bin\"\n") ==
        "docker.conf:3:1: 'PATH' cannot be set in docker.conf: replacing the image's PATH can stop the container "
        "from starting; install programs in /usr/local/bin in a setup stage instead");
  CHECK(error_of("image = \"x\"\n[env]\nCOMPDIR = \"/elsewhere\"\n") ==
        "docker.conf:3:1: 'COMPDIR' is set by ce-run and cannot be set in docker.conf; choose another name");
  CHECK(error_of("image = \"x\"\nenv = { A = \"1\", GFSDIR = \"/tmp\" }\n") ==
        "docker.conf:2:18: 'GFSDIR' is set by ce-run and cannot be set in docker.conf; choose another name");
  CHECK(error_of("image = \"x\"\n[env]\n  CE_COMMIT = 1\n") ==
        "docker.conf:3:3: 'CE_COMMIT' is set by ce-run and cannot be set in docker.conf; choose another name");
  CHECK(error_of("image = \"x\"\n[env]\nCE_RUN_HOST_CONF = \"/tmp/h\"\n") ==
        "docker.conf:3:1: 'CE_RUN_HOST_CONF' is reserved: names starting with CE_RUN_ belong to ce-run; choose "
        "another name");
  for (std::string_view reserved : reserved_env_names) {
    std::string name(reserved);
    if (name.back() == '*') name.back() = 'X';
    INFO(name);
    CHECK_THAT(error_of("image = \"x\"\n[env]\n" + name + " = \"v\"\n"), Catch::StartsWith("docker.conf:3:1: '" + name + "' "));
  }
  // Names only: a lower-case path or a CE_ name of the user's own are theirs.
  CHECK(parse_docker_conf("image = \"x\"\n[env]\npath = \"a\"\nCE_RUNS = \"3\"\n", "docker.conf").env.size() == 2);
}

TEST_CASE("user and workdir hold no control characters", "[docker_conf][conf][security]") {
  CHECK(error_of("image = \"x\"\nuser = \"root\\r\\nX\"\n") ==
        "docker.conf:2:8: 'user' = \"root\\r\\nX\" is not a user: give a name or uid, optionally \":group\" or "
        "\":gid\"; e.g. user = \"root\" (or \"1000:1000\")");
  CHECK_THAT(error_of("image = \"x\"\nuser = \"1000:\"\n"), Catch::StartsWith("docker.conf:2:8: 'user' = \"1000:\" is not a user"));
  CHECK_THAT(error_of("image = \"x\"\nworkdir = \"/w\\tx\"\n"),
             Catch::StartsWith("docker.conf:2:11: 'workdir' = \"/w\\tx\" holds a control character"));
  for (const char* user : {"root", "1000:1000", "nobody:nogroup", "www-data", "svc.user_1"})
    CHECK(parse_docker_conf(std::string("image = \"x\"\nuser = \"") + user + "\"\n", "docker.conf").user == user);
}

TEST_CASE("docker.conf alone may choose the network none or bridge, never the host's or a container's",
          "[docker_conf][conf][security]") {
  const std::string allowed =
      "docker.conf may choose \"none\", \"bridge\" or a network root allows in host.conf; e.g. network = \"bridge\" "
      "(default \"none\")";
  CHECK(error_of("image = \"x\"\nnetwork = \"host\"\n") ==
        "docker.conf:2:11: 'network' = \"host\" would give the computation the host's network; " + allowed);
  CHECK(error_of("image = \"x\"\nnetwork = \"container:3f2a\"\n") ==
        "docker.conf:2:11: 'network' = \"container:3f2a\" would give the computation another container's network; " +
            allowed);
  CHECK(error_of("image = \"x\"\nnetwork = \"ns:/proc/1/ns/net\"\n") ==
        "docker.conf:2:11: 'network' = \"ns:/proc/1/ns/net\" is not a network name: ':' and '/' belong to forms such "
        "as container:NAME; " + allowed);
  CHECK(error_of("image = \"x\"\nnetwork = \"a b\"\n") ==
        "docker.conf:2:11: 'network' = \"a b\" is not a network name (letters, digits, '_', '.' and '-', starting "
        "with a letter or digit); e.g. network = \"bridge\" (default \"none\")");
  CHECK(parse_docker_conf("image = \"x\"\nnetwork = \"none\"\n", "docker.conf").network == "none");
  CHECK(parse_docker_conf("image = \"x\"\nnetwork = \"bridge\"\n", "docker.conf").network == "bridge");
  // Parses; whether it is allowed is host.conf's to say (apply_host_policy).
  CHECK(parse_docker_conf("image = \"x\"\nnetwork = \"lab-net_1.a\"\n", "docker.conf").network == "lab-net_1.a");
}

TEST_CASE("each key's place is kept for the checks made after parsing", "[docker_conf][conf]") {
  auto conf = parse_docker_conf("# c\nimage = \"x\"\n  memory = \"1g\"\n[env]\nA = \"1\"\n", "comp/docker.conf");
  CHECK(conf.origin == "comp/docker.conf");
  CHECK(conf.positions == std::map<std::string, std::pair<int, int>>{{"image", {2, 1}}, {"memory", {3, 3}}, {"env", {4, 2}}});
}

TEST_CASE("placement: Swarm constraints on node labels, host name, role and platform, and nothing else",
          "[docker_conf][conf]") {
  auto conf = parse_docker_conf("image = \"x\"\nplacement = [\"node.labels.gpu == true\", \"node.role!=manager\", "
                                "\"node.hostname == ce-swarm-w2\", \"node.platform.arch == x86_64\"]\n",
                                "docker.conf");
  CHECK(conf.placement == std::vector<std::string>{"node.labels.gpu == true", "node.role!=manager",
                                                   "node.hostname == ce-swarm-w2", "node.platform.arch == x86_64"});
  CHECK(parse_docker_conf("image = \"x\"\n", "docker.conf").placement.empty());
  CHECK(error_of("image = \"x\"\nplacement = [\"node.id == abc\"]\n") ==
        "docker.conf:2:14: 'placement' holds \"node.id == abc\", which names no attribute a computation may place "
        "by: node.labels.KEY, node.hostname, node.role, node.platform.os or node.platform.arch; "
        "e.g. placement = [\"node.labels.gpu == true\"]");
  CHECK_THAT(error_of("image = \"x\"\nplacement = [\"gpu\"]\n"),
             Catch::StartsWith("docker.conf:2:14: 'placement' holds \"gpu\", which is not a constraint"));
  CHECK_THAT(error_of("image = \"x\"\nplacement = [\"node.labels.a == b c\"]\n"),
             Catch::Contains("which has no plain value"));
  CHECK_THAT(error_of("image = \"x\"\nplacement = [\"node.labels.a\\n== b\"]\n"),
             Catch::Contains("\"node.labels.a\\n== b\", which names no attribute"));
  CHECK_THAT(error_of("image = \"x\"\nplacement = \"node.role == worker\"\n"),
             Catch::StartsWith("docker.conf:2:13: 'placement' must be an array of strings"));
}
