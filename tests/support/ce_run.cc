#include "support/ce_run.h"

#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace ce::test {

namespace fs = boost::filesystem;

std::string ce_run_binary() { return CE_RUN_BINARY; }

namespace {
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
std::string slurp(const fs::path& p) {
  std::ifstream in(p.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}
}  // namespace

RunResult run_ce(const std::vector<std::string>& args) { return run_ce_env({}, args); }

RunResult run_ce_env(const std::vector<std::string>& env, const std::vector<std::string>& args) {
  fs::path dir = fs::temp_directory_path() / fs::unique_path("ce-run-out-%%%%%%%%");
  fs::create_directories(dir);
  std::string command;
  if (!env.empty()) {
    command = "env";
    for (const auto& e : env) command += " " + quote(e);
    command += " ";
  }
  command += quote(ce_run_binary());
  for (const auto& a : args) command += " " + quote(a);
  command += " >" + quote((dir / "out").string()) + " 2>" + quote((dir / "err").string()) + " </dev/null";
  int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  fs::remove_all(dir);
  return r;
}

int spawn_ce(const std::vector<std::string>& args, const std::string& stderr_file,
             const std::vector<std::string>& env) {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string binary = ce_run_binary();
    argv.push_back(binary.data());
    std::vector<std::string> copies = args;
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    // dup2, not freopen: freopen would flush the parent's buffered output
    // a second time from here.
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(stderr_file.empty() ? null : ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

void sh(const fs::path& dir, const std::string& command) {
  std::string full = "cd " + quote(dir.string()) + " && (" + command + ") >/dev/null 2>&1";
  if (std::system(full.c_str()) != 0) throw std::runtime_error("command failed in " + dir.string() + ": " + command);
}

void make_repo(const fs::path& dir, const std::map<std::string, std::string>& files) {
  for (const auto& [name, content] : files) {
    fs::path file = dir / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file.string(), std::ios::binary) << content;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "exec") == 0)
      fs::permissions(file, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read |
                                fs::perms::group_exe | fs::perms::others_exe);
  }
  sh(dir, "git init -q -b main . && git add -A && git -c user.name=test -c user.email=test@example.org "
          "commit -q -m init");
}

NoEngine::NoEngine() {
  if (const char* old = std::getenv("DOCKER_HOST")) old_ = old;
  ::setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock", 1);
}

NoEngine::~NoEngine() {
  if (old_)
    ::setenv("DOCKER_HOST", old_->c_str(), 1);
  else
    ::unsetenv("DOCKER_HOST");
}

}  // namespace ce::test
