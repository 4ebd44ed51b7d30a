#include "support/task.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "support/computation.h"

namespace ce::test {

namespace fs = boost::filesystem;

TaskDir::TaskDir()
    : prefix_("task-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000)) {}

TaskDir::~TaskDir() {
  try {
    for (const auto& name : names_) {
      for (const auto& c : client.list_containers({{"ce-run.computation", full_name(name)}}, docker::Which::all))
        client.remove_container(c.id, docker::Force::yes);
      remove_images(client, {{"ce-run.computation", full_name(name)}});
    }
  } catch (const std::exception&) {
  }
}

void TaskDir::computation(const std::string& name, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const std::string& body, const std::string& setup) {
  names_.push_back(name);
  std::string dir = "computations/" + name + "/";
  std::string in, out;
  for (const auto& i : inputs) in += i + "\n";
  for (const auto& o : outputs) out += o + "\n";
  pending_[dir + "docker.conf"] = "image = \"busybox:latest\"\nname = \"" + full_name(name) + "\"\n";
  pending_[dir + "inputs"] = in;
  pending_[dir + "outputs"] = out;
  pending_[dir + "exec"] = "#!/bin/sh\necho \"$*\" >> /tmp/runs\n" + body + "\n";
  if (!setup.empty()) pending_[dir + "docker-setup.sh"] = setup;
}

void TaskDir::node(const std::string& path, const std::string& kind, const std::string& value,
                   const std::optional<std::string>& outputs) {
  pending_[path + "/kind"] = kind + "\n";
  pending_[path + "/value"] = value + "\n";
  if (outputs) pending_[path + "/outputs"] = *outputs;
}

void TaskDir::file(const std::string& path, const std::string& content) { pending_[path] = content; }

void TaskDir::inputs(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += n + "\n";
  pending_["inputs"] = text;
}

void TaskDir::commit() {
  if (!made_) {
    make_repo(dir.path(), pending_);
    made_ = true;
  } else {
    for (const auto& [name, content] : pending_) {
      fs::path file = dir.path() / name;
      fs::create_directories(file.parent_path());
      std::ofstream(file.string(), std::ios::binary) << content;
    }
    sh(dir.path(), "chmod +x computations/*/exec 2>/dev/null; git add -A && git -c user.name=t -c user.email=t@e "
                   "commit -q -m change");
  }
  pending_.clear();
}

std::string TaskDir::data(const std::string& name, const std::string& content) {
  fs::path p = input_dir.path() / name;
  std::ofstream(p.string(), std::ios::binary) << content;
  return p.string();
}

int TaskDir::runs(const std::string& name) {
  int n = 0;
  for (const auto& c : client.list_containers({{"ce-run.role", "run"}, {"ce-run.computation", full_name(name)}})) {
    std::string text = read_in_container(client, c.id, "/tmp/runs");
    n += static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }
  return n;
}

RunResult TaskDir::run(std::vector<std::string> args) {
  args.insert(args.begin(), {"--gfs", gfs.str()});
  return run_ce(args);
}

void upper_count_task(TaskDir& t, const std::string& first) {
  t.computation("upper", {"text"}, {"big"}, first + "tr a-z A-Z < \"$1\" > \"$2\"; echo upper-said-$(cat \"$2\")");
  t.computation("count", {"text", "big"}, {"n"}, first + "cat \"$1\" \"$2\" | wc -c > \"$3\"");
  t.inputs({"text"});
  t.node("workflow", "computation", "count");
  t.node("workflow/inputs/00-text", "input", "text");
  t.node("workflow/inputs/01-big", "computation", "upper");
  t.node("workflow/inputs/01-big/inputs/00-text", "input", "text");
  t.commit();
}

std::vector<std::string> files_below(const std::string& dir) {
  std::vector<std::string> files;
  for (fs::recursive_directory_iterator it(dir), end; it != end; ++it)
    files.push_back(fs::path(it->path()).lexically_relative(dir).string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace ce::test
