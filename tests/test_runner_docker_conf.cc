#include <catch2/catch.hpp>

#include "runner/docker_conf.h"

using ce::runner::parse_docker_conf;

TEST_CASE("the seed's docker.conf with only an image is accepted", "[docker_conf]") {
  auto conf = parse_docker_conf("image = \"debian:bookworm\"\n", "docker.conf");
  CHECK(conf.image == "debian:bookworm");
  CHECK(conf.name.empty());
}

TEST_CASE("comments and a name are read", "[docker_conf]") {
  auto conf = parse_docker_conf("# base\nimage = 'busybox:latest' # local\nname = \"hello\"\n", "docker.conf");
  CHECK(conf.image == "busybox:latest");
  CHECK(conf.name == "hello");
}

TEST_CASE("an unknown key names the nearest known key and its place", "[docker_conf]") {
  REQUIRE_THROWS_WITH(parse_docker_conf("image = \"x\"\n  imgae = \"y\"\n", "docker.conf"),
                      "docker.conf:2:3: unknown key 'imgae'; did you mean 'image'?");
  REQUIRE_THROWS_WITH(parse_docker_conf("image = \"x\"\ncompletely_different = 1\n", "docker.conf"),
                      "docker.conf:2:1: unknown key 'completely_different'; known keys: image, name");
}

TEST_CASE("a wrong type says what was expected", "[docker_conf]") {
  REQUIRE_THROWS_WITH(parse_docker_conf("image = 42\n", "docker.conf"),
                      "docker.conf:1:9: 'image' must be a string, not an integer; e.g. image = \"...\"");
}

TEST_CASE("a missing image is an error with the fix", "[docker_conf]") {
  REQUIRE_THROWS_WITH(parse_docker_conf("name = \"x\"\n", "docker.conf"),
                      "docker.conf:1:1: the required key 'image' is missing; add e.g. image = \"debian:bookworm\"");
}

TEST_CASE("TOML syntax errors carry line and column", "[docker_conf]") {
  REQUIRE_THROWS_WITH(parse_docker_conf("image = \"unterminated\n", "x/docker.conf"),
                      Catch::StartsWith("x/docker.conf:1:"));
  REQUIRE_THROWS_WITH(parse_docker_conf("image = \"unterminated\n", "x/docker.conf"),
                      Catch::EndsWith("; docker.conf is TOML, e.g. image = \"debian:bookworm\""));
}
