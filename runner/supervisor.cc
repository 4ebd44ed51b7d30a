#include "runner/supervisor.h"

#include <boost/filesystem.hpp>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace ce::runner {

SupervisorBinary supervisor_on_host(const std::string& given) {
  boost::filesystem::path path = given;
  if (path.empty()) {
    boost::system::error_code ec;
    auto self = boost::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot find ce-run's own binary through /proc/self/exe: " + ec.message());
    path = self.parent_path() / "ce-run-supervise";
  }
  struct stat st {};
  if (::access(path.c_str(), X_OK) != 0 || ::stat(path.c_str(), &st) != 0)
    throw std::runtime_error(path.string() + " is missing or not executable: ce-run runs every command under it; "
                                             "it is built and installed with ce-run, so rebuild or reinstall");
  return {path.string(), std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
                             std::to_string(st.st_size) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
                             std::to_string(st.st_ctim.tv_nsec)};
}

}  // namespace ce::runner
