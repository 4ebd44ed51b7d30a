// Where ce-run-supervise (docker/supervise.cc) is: on the host, beside the
// ce-run binary (both are built and installed together); in a commit's
// container, bind-mounted read-only at one fixed path. Every command ce-run
// runs in that container (everytime steps, the computation, `shell`) runs
// under it, so nothing it started outlives ce-run.
#pragma once

#include <string>

namespace ce::runner {

inline constexpr const char* supervisor_in_container = "/.ce-run/supervise";

struct SupervisorBinary {
  std::string path;
  // Which file it is (device, inode, size, change time): a container binds
  // the file it was made with, so when ce-run is rebuilt or reinstalled,
  // this changes and the commit's container is made anew.
  std::string identity;
};

// The binary at `path`, or (empty) beside the running program (ce-run).
// Throws, saying what to do, when it is not there.
SupervisorBinary supervisor_on_host(const std::string& path = {});

}  // namespace ce::runner
