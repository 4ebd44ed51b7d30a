// A computation's directory, opened for a run as its user would open it.
//
// COMPDIR belongs to the user who runs ce-run: under sudo it must be a
// directory of theirs, opened with their rights (runner/invoker.h), and
// ce-run reads its files through that descriptor without following a
// symlink (docs/security.md). The one loader of COMPDIR for every command.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "runner/docker_conf.h"
#include "runner/host_conf.h"
#include "runner/invoker.h"
#include "stages/host_files.h"
#include "stages/setup_script.h"

namespace ce::runner {

struct CompDir {
  std::string shown;  // as the user named it
  std::string dir;    // canonical
  std::string name;   // docker.conf's name, else the directory's
  DockerConf conf;  // with root's policy applied (host_conf.h)
  HostConf host;    // root's settings for the machine
  std::shared_ptr<stages::Fd> fd;

  // The file `name` of COMPDIR ("docker.conf"), as the user named it.
  std::string shown_file(const std::string& name) const;
  // The text of a regular file of COMPDIR; nullopt when missing; throws for
  // a symlink or anything but a regular file.
  std::optional<std::string> read(const std::string& name) const;
  // What `name` is, without following a link: "" when missing, "file",
  // "executable", "link" or "other".
  std::string kind(const std::string& name) const;
};

// Opens COMPDIR with the invoker's rights, checks it is theirs (or the
// invoker is root), reads docker.conf and applies root's host.conf to it
// (under sudo always /etc/ce-run/host.conf: CE_RUN_HOST_CONF is root's own). Throws with a message that says
// what to do.
CompDir open_compdir(const std::string& given, const Invoker& invoker);

// A computation: COMPDIR opened as above, and its docker-setup.sh parsed
// (empty when it has none). The one loader of a computation: throws with
// the file, line and column of a syntax error.
struct Computation {
  CompDir comp;
  stages::SetupScript script;
};
Computation load_computation(const std::string& given, const Invoker& invoker);
// The docker-setup.sh of an opened COMPDIR, parsed (load_computation's).
stages::SetupScript read_setup_script(const CompDir& compdir);

// Writes a file of COMPDIR (docker-container) with the invoker's rights,
// atomically.
void write_compdir_file(const CompDir& compdir, const std::string& name, const std::string& text,
                        const Invoker& invoker);

}  // namespace ce::runner
