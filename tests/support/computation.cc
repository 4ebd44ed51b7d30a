#include "support/computation.h"

#include <chrono>
#include <fstream>
#include <sstream>
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

const char* const pair_exec =
    "#!/bin/sh\n"
    "echo run >> \"$GFSDIR/runs\"\n"
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

int GfsCall::runs() {
  std::ifstream in((gfs.path() / "runs").string());
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

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
