#include "runner/compdir.h"

#include <boost/filesystem.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace ce::runner {

namespace fs = boost::filesystem;

std::string CompDir::shown_file(const std::string& file) const {
  return (fs::path(shown) / file).lexically_normal().string();
}

std::optional<std::string> CompDir::read(const std::string& file) const {
  stages::Fd f = stages::open_regular_at(fd->get(), file, shown_file(file));
  if (!f) return std::nullopt;
  return stages::read_all(f.get(), shown_file(file), std::size_t{16} << 20);
}

std::string CompDir::kind(const std::string& file) const {
  struct stat st {};
  if (::fstatat(fd->get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return "";
  if (S_ISLNK(st.st_mode)) return "link";
  if (!S_ISREG(st.st_mode)) return "other";
  return (st.st_mode & 0111) != 0 ? "executable" : "file";
}

CompDir open_compdir(const std::string& given, const Invoker& invoker) {
  CompDir c;
  c.shown = given;
  try {
    c.fd = std::make_shared<stages::Fd>(open_as_invoker(invoker, given, O_RDONLY | O_DIRECTORY));
  } catch (const std::exception& e) {
    throw std::runtime_error(given + ": not a directory you can read (" + e.what() +
                             "); give the computation's directory");
  }
  struct stat st {};
  if (::fstat(c.fd->get(), &st) != 0) throw std::runtime_error(given + ": " + std::strerror(errno));
  if (!invoker.root() && st.st_uid != invoker.uid)
    throw std::runtime_error(given + " belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " +
                             std::to_string(invoker.uid) +
                             "): ce-run runs as root, so it runs only computations in directories of your own; "
                             "clone the repository into one");
  // The directory itself, wherever the path led.
  char path[PATH_MAX + 1] = {};
  std::string link = "/proc/self/fd/" + std::to_string(c.fd->get());
  ssize_t n = ::readlink(link.c_str(), path, PATH_MAX);
  if (n <= 0 || path[0] != '/') throw std::runtime_error(given + ": cannot tell where it is");
  c.dir.assign(path, static_cast<std::size_t>(n));
  if (c.kind("docker.conf") == "link")
    throw std::runtime_error(c.shown_file("docker.conf") +
                             " is a symbolic link; ce-run reads only regular files of the repository and never "
                             "follows a link there: commit the file itself");
  auto text = c.read("docker.conf");
  if (!text)
    throw ConfigError(c.shown_file("docker.conf") + ": cannot read docker.conf; a computation directory needs one");
  c.conf = parse_docker_conf(*text, c.shown_file("docker.conf"));
  // A user through sudo never chooses which settings of root's apply.
  c.host = invoker.root()               ? load_host_conf()
           : !invoker.host_conf.empty() ? load_host_conf(invoker.host_conf, MissingHostConf::error)
                                        : load_host_conf(default_host_conf, MissingHostConf::defaults);
  apply_host_policy(c.conf, c.host);
  c.name = c.conf.name.empty() ? fs::path(c.dir).filename().string() : c.conf.name;
  return c;
}

void write_compdir_file(const CompDir& compdir, const std::string& name, const std::string& text,
                        const Invoker& invoker) {
  as_invoker(invoker, [&] {
    stages::write_atomically_at(compdir.fd->get(), name, text, 0644, compdir.dir);
    return -1;
  });
}

stages::SetupScript read_setup_script(const CompDir& compdir) {
  std::string origin = compdir.shown_file("docker-setup.sh");
  if (auto text = compdir.read("docker-setup.sh")) return stages::parse_setup_script(*text, origin);
  stages::SetupScript script;
  script.origin = origin;
  return script;
}

Computation load_computation(const std::string& given, const Invoker& invoker) {
  Computation c;
  c.comp = open_compdir(given, invoker);
  c.script = read_setup_script(c.comp);
  return c;
}

}  // namespace ce::runner
