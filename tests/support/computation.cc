#include "support/computation.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace ce::test {

namespace {
std::string unique_name() {
  return "cli-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
}
}  // namespace

Computation::Computation(const std::string& setup, const std::string& exec, std::map<std::string, std::string> extra,
                         const std::string& image)
    : name(unique_name()) {
  std::map<std::string, std::string> files = {
      {"docker.conf", "image = \"" + image + "\"\nname = \"" + name + "\"\n"}, {"exec", exec}};
  if (!setup.empty()) files["docker-setup.sh"] = setup;
  for (auto& [file, content] : extra) files[file] = content;
  make_repo(dir.path(), files);
}

Computation::~Computation() {
  try {
    for (const auto& c : client.list_containers({{"ce-run.computation", name}}))
      client.remove_container(c.id, docker::Force::yes);
    remove_images(client, {{"ce-run.computation", name}});
  } catch (const std::exception&) {
  }
}

std::size_t Computation::images() { return client.list_images({{"ce-run.computation", name}}).size(); }
std::size_t Computation::containers() { return client.list_containers({{"ce-run.computation", name}}).size(); }

void Computation::commit(const std::string& file, const std::string& content) {
  std::ofstream((dir.path() / file).string()) << content;
  sh(dir.path(), "git add -A && git -c user.name=t -c user.email=t@e commit -q -m change");
}

std::vector<std::string> Computation::run_containers() {
  auto found = client.list_containers({{"ce-run.role", "run"}, {"ce-run.computation", name}}, docker::Which::all);
  // The engine lists the newest first; `created` is in seconds, so two made
  // within a second keep the engine's order, reversed.
  std::reverse(found.begin(), found.end());
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.created < b.created; });
  std::vector<std::string> ids;
  for (const auto& f : found) ids.push_back(f.id);
  return ids;
}

namespace {
// Whether the container exists and is not on its way out. (A run that
// replaces its commit's container removes the old one, perhaps while we
// exec in it: the engine then refuses the exec, or the exec fails with 126.)
bool still_there(docker::Client& client, const std::string& id, bool running) {
  auto info = client.find_container(id);
  if (!info || info->state.status == "removing" || info->state.status == "dead") return false;
  return !running || info->state.running;
}

// `attempt`, and once more 200 ms later if it fails while the container is
// still there; false when it is not (any more).
bool with_retry(docker::Client& client, const std::string& id, bool running, const std::function<bool()>& attempt) {
  for (int i = 0;; ++i) {
    try {
      return attempt();
    } catch (const std::exception&) {
      if (!still_there(client, id, running)) return false;
      if (i == 1) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}
}  // namespace

std::vector<std::string> Computation::lines_in_containers(const std::string& path) {
  std::vector<std::string> lines;
  for (const auto& id : run_containers()) {
    std::string text;
    with_retry(client, id, false, [&] {
      text.clear();
      auto info = client.find_container(id);
      if (!info) return false;  // removed meanwhile: its lines went with it
      if (info->state.running) {
        text = read_in_container(client, id, path);
      } else if (info->state.status == "exited") {
        // Stopped with the engine: start it to read it, and leave it as it was.
        client.start_container(id);
        try {
          text = read_in_container(client, id, path);
        } catch (...) {
          client.stop_container(id, 1);
          throw;
        }
        client.stop_container(id, 1);
      }  // (created and never started, or being removed: nothing written)
      return true;
    });
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  return lines;
}

bool Computation::exists_in_containers(const std::string& path) {
  for (const auto& c : client.list_containers({{"ce-run.role", "run"}, {"ce-run.computation", name}},
                                              docker::Which::running))
    if (with_retry(client, c.id, true, [&] { return exists_in_container(client, c.id, path); })) return true;
  return false;
}

namespace {
// `sh -c SCRIPT sh PATH` as root in the container; its exit code.
int in_container(docker::Client& client, const std::string& container, const std::string& script,
                 const std::string& path, std::string* out) {
  docker::ExecSpec spec;
  spec.cmd = {"sh", "-c", script, "sh", path};
  spec.user = "0:0";
  std::string err;
  int code = client.run_exec(container, spec, [&](docker::StreamKind kind, std::string_view bytes) {
    if (kind == docker::StreamKind::stderr_stream)
      err.append(bytes);
    else if (out)
      out->append(bytes);
  });
  if (code > 1 || (code == 1 && !err.empty()))
    throw std::runtime_error("in container " + container.substr(0, 12) + ": " + script + " (" + path +
                             ") exited with " + std::to_string(code) + ": " + err);
  return code;
}
}  // namespace

std::string read_in_container(docker::Client& client, const std::string& container, const std::string& path) {
  std::string out;
  in_container(client, container, "[ ! -e \"$1\" ] || exec cat -- \"$1\"", path, &out);
  return out;
}

bool exists_in_container(docker::Client& client, const std::string& container, const std::string& path) {
  return in_container(client, container, "[ -e \"$1\" ]", path, nullptr) == 0;
}

bool poll_until(const std::function<bool()>& ready, double seconds, std::chrono::milliseconds interval) {
  auto end = std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  for (;;) {
    auto next = std::chrono::steady_clock::now() + interval;
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_until(std::min(next, end));
  }
}

const char* const pair_exec =
    "#!/bin/sh\n"
    "echo run >> /tmp/runs\n"
    "cat \"$1\" \"$2\" > \"$3\"\n"
    "wc -c < \"$1\" > \"$4\"\n";

GfsCall::GfsCall(const std::string& exec, std::map<std::string, std::string> extra)
    : c("", exec, [&] {
        extra.emplace("inputs", "first\nsecond\n");
        extra.emplace("outputs", "joined\nsize\n");
        return extra;
      }()) {
  a = (data.path() / "a.txt").string();
  b = (data.path() / "b.txt").string();
  std::ofstream(a) << "alpha\n";
  std::ofstream(b) << "beta\n";
}

std::vector<std::string> GfsCall::args(std::vector<std::string> extra) {
  std::vector<std::string> all = {"--gfs", gfs.str()};
  all.insert(all.end(), extra.begin(), extra.end());
  all.push_back(c.path());
  all.push_back(a);
  all.push_back(b);
  return all;
}

RunResult GfsCall::run(std::vector<std::string> extra) { return run_ce(args(std::move(extra))); }

int GfsCall::runs() { return c.count_lines_in_containers("/tmp/runs"); }

std::vector<std::string> GfsCall::paths(const std::string& out) {
  std::vector<std::string> p;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) p.push_back(line.substr(0, line.find(' ')));
  return p;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace ce::test
