// Who ran ce-run, and doing things with their rights rather than root's.
//
// ce-run runs as root for users who must not get root through it
// (docs/security.md). Files a user names (an input, --report) are opened or
// written by a child process that has taken on the user's uid, gid and
// groups, so the kernel's permission checks decide, as they would for the
// user's own program.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "stages/host_files.h"

namespace ce::runner {

struct Invoker {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // Their Docker client's configuration directory ($DOCKER_CONFIG, else
  // ~/.docker): the fleet registry's credentials (docs/fleet.md).
  std::string docker_config;
  // The host.conf that applies to their calls, chosen by root (a service,
  // from its own settings); empty: /etc/ce-run/host.conf. Never the
  // user's choice: invoking_user() leaves it empty.
  std::string host_conf;
  bool root() const { return uid == 0; }
  // "UID:GID", as docker's user field takes it.
  std::string spec() const { return std::to_string(uid) + ":" + std::to_string(gid); }
};

// Under sudo (real uid 0 with SUDO_UID and SUDO_GID set): that user, with
// the groups the system gives them. Otherwise the real uid and gid.
Invoker invoking_user();

// The user `name` of the passwd database, with their groups and Docker
// configuration directory (~/.docker): whom a service's token stands for.
// Throws std::runtime_error when there is no such user.
Invoker user_named(const std::string& name);

// Runs `work` with the invoker's rights and returns the descriptor it
// returns (or an empty Fd for -1). For a root invoker it runs in this
// process; otherwise in a forked child that took on the invoker's
// credentials, the descriptor passed back over a socket. A std::exception
// thrown by `work` comes back as std::runtime_error with its message.
stages::Fd as_invoker(const Invoker& invoker, const std::function<int()>& work);

// Opens `path` for reading with the invoker's rights (following symlinks
// as the user's own open would); throws std::runtime_error with the
// system's reason.
stages::Fd open_as_invoker(const Invoker& invoker, const std::string& path, int flags);

}  // namespace ce::runner
