// docker.conf: the computation's Docker description, TOML.
// Keys are defined in one table (docker_conf.cc); docs/docker-conf.md is
// their reference. Errors carry file:line:col.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace ce::runner {

struct DockerConf {
  std::string image;  // required: the base image
  std::string name;   // the computation's name; empty: the directory's name
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses docker.conf text; `origin` names the file in messages. Throws
// ConfigError "origin:LINE:COL: what; what to do".
DockerConf parse_docker_conf(std::string_view text, const std::string& origin);
DockerConf load_docker_conf(const std::string& path);

}  // namespace ce::runner
