#include "runner/task.h"

#include <boost/filesystem.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <set>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

constexpr std::size_t max_nodes = 100000;
constexpr int max_depth = 200;
constexpr std::size_t max_file = std::size_t{1} << 20;

// The task's files as read with the user's rights, before any meaning is
// given to them.
struct RawNode {
  std::string path;  // relative to TASKDIR
  std::string problem;  // not a directory, a symlink loop, unreadable
  std::optional<std::string> kind, value, outputs;  // kind and value: the first line
  std::vector<std::string> entries;  // of inputs/, sorted; each is a node at path/inputs/NAME
};

struct RawTask {
  std::string problem;  // TASKDIR itself cannot be read
  std::optional<std::string> inputs;
  std::vector<std::string> computations;  // the directories in computations/
  std::vector<RawNode> nodes;             // pre-order
  bool too_many = false;
};

// Serialised between the process with the user's rights and ce-run.
void put(std::string& out, const std::string& s) { out += std::to_string(s.size()) + ":" + s; }
void put(std::string& out, const std::optional<std::string>& s) {
  out += s ? "+" : "-";
  if (s) put(out, *s);
}
struct Reader {
  const std::string& in;
  std::size_t at = 0;
  std::string text() {
    auto colon = in.find(':', at);
    if (colon == std::string::npos) throw std::runtime_error("damaged");
    std::size_t n = std::stoul(in.substr(at, colon - at));
    std::string s = in.substr(colon + 1, n);
    at = colon + 1 + n;
    return s;
  }
  std::optional<std::string> maybe() {
    char c = in.at(at++);
    if (c == '-') return std::nullopt;
    return text();
  }
  std::size_t number() { return std::stoul(text()); }
};

std::string serialise(const RawTask& t) {
  std::string out;
  put(out, t.problem);
  put(out, t.inputs);
  put(out, std::to_string(t.computations.size()));
  for (const auto& c : t.computations) put(out, c);
  put(out, std::to_string(t.too_many ? 1 : 0));
  put(out, std::to_string(t.nodes.size()));
  for (const auto& n : t.nodes) {
    put(out, n.path);
    put(out, n.problem);
    put(out, n.kind);
    put(out, n.value);
    put(out, n.outputs);
    put(out, std::to_string(n.entries.size()));
    for (const auto& e : n.entries) put(out, e);
  }
  return out;
}

RawTask deserialise(const std::string& in) {
  Reader r{in};
  RawTask t;
  t.problem = r.text();
  t.inputs = r.maybe();
  for (std::size_t n = r.number(); n > 0; --n) t.computations.push_back(r.text());
  t.too_many = r.number() != 0;
  for (std::size_t n = r.number(); n > 0; --n) {
    RawNode node;
    node.path = r.text();
    node.problem = r.text();
    node.kind = r.maybe();
    node.value = r.maybe();
    node.outputs = r.maybe();
    for (std::size_t e = r.number(); e > 0; --e) node.entries.push_back(r.text());
    t.nodes.push_back(std::move(node));
  }
  return t;
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
  return line;
}

// A file in `dir`, as the user's own open would read it (a symlink is
// followed, with the user's rights); nullopt when missing. `regular`: the
// directory listed it as a regular file, so it is opened without following
// a link and read without an fstat (a short read of a regular file is its
// end); anything else is checked with fstat first.
std::optional<std::string> read_file_at(int dir, const char* name, std::string& problem, const std::string& shown,
                                        bool regular = false) {
  int fd = ::openat(dir, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (regular ? O_NOFOLLOW : 0));
  if (fd < 0 && regular && errno == ELOOP) return read_file_at(dir, name, problem, shown);  // became a link
  if (fd < 0) {
    if (errno != ENOENT) problem = "cannot read " + shown + ": " + std::strerror(errno);
    return std::nullopt;
  }
  stages::Fd closer(fd);
  std::size_t size = 256;
  if (!regular) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      problem = shown + " is not a regular file";
      return std::nullopt;
    }
    if (static_cast<std::size_t>(st.st_size) > max_file) {
      problem = shown + " is larger than 1 MiB";
      return std::nullopt;
    }
    size = static_cast<std::size_t>(st.st_size) + 1;
  }
  // Node files are a line: one read, more if the file is longer (or grew).
  std::string text(size, '\0');
  std::size_t got = 0;
  for (;;) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // (A regular file swapped for a FIFO or a directory between the
      // listing and the open ends here.)
      problem = errno == EAGAIN || errno == EISDIR ? shown + " is not a regular file"
                                                   : "cannot read " + shown + ": " + std::strerror(errno);
      return std::nullopt;
    }
    got += static_cast<std::size_t>(n);
    if (n == 0 || got < text.size()) break;
    if (text.size() > max_file) {
      problem = shown + " is larger than 1 MiB";
      return std::nullopt;
    }
    text.resize(text.size() * 2);
  }
  text.resize(got);
  return text;
}

struct DirEntry {
  std::string name;
  unsigned char type;  // DT_DIR, DT_REG, DT_LNK, ... or DT_UNKNOWN
  bool operator<(const DirEntry& other) const { return name < other.name; }
};

// The entries of a freshly opened directory, sorted by name (getdents64 on
// the descriptor itself: a node's directory is listed once, with no
// descriptor of its own).
std::vector<DirEntry> entries_in(int dir) {
  std::vector<DirEntry> entries;  // (`dir` is freshly opened: at its start)
  alignas(8) char buffer[16384];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      struct Entry {
        std::uint64_t ino;
        std::int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      const auto* e = reinterpret_cast<const Entry*>(buffer + at);
      std::string name = e->name;
      if (name != "." && name != "..") entries.push_back({std::move(name), e->type});
      at += e->reclen;
    }
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

std::vector<std::string> names_of(const std::vector<DirEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

// Walks the node tree in pre-order. A node reached through a real
// directory cannot be one of its ancestors (the kernel allows no hard link
// to a directory), so only a node reached through a symbolic link is
// compared with them; the ancestors' identities are taken when first needed.
// The first node with more than one input hands its sub-trees to a few
// threads: walking is system calls, which two cores do side by side.
struct Walker {
  struct Ancestor {
    int fd;
    std::optional<std::pair<dev_t, ino_t>> id;
    std::string path;
  };
  std::atomic<std::size_t>& count;
  std::atomic<bool>& too_many;
  std::atomic<bool>& fanned_out;
  std::vector<RawNode> nodes;  // this walker's, in pre-order
  std::vector<Ancestor> ancestors;

  void node(int parent, const DirEntry& entry, const std::string& path, int depth) {
    if (count.fetch_add(1) >= max_nodes) {
      too_many = true;
      return;
    }
    nodes.push_back({});
    std::size_t me = nodes.size() - 1;
    auto problem = [&](const std::string& p) { nodes[me].problem = p; };
    nodes[me].path = path;
    bool real_dir = entry.type == DT_DIR;
    int fd = ::openat(parent, entry.name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (real_dir ? O_NOFOLLOW : 0));
    if (fd < 0 && real_dir && errno == ELOOP) {  // became a link since it was listed
      real_dir = false;
      fd = ::openat(parent, entry.name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
      problem(errno == ENOENT    ? "missing"
              : errno == ENOTDIR ? "not a directory; a node is a directory with kind and value"
              : errno == ELOOP   ? "a symbolic link loop"
                                 : std::string("cannot read it: ") + std::strerror(errno));
      return;
    }
    stages::Fd dir(fd);
    if (!real_dir) {
      struct stat st {};
      ::fstat(fd, &st);
      for (auto& a : ancestors) {
        if (!a.id) {
          struct stat ast {};
          ::fstat(a.fd, &ast);
          a.id = std::make_pair(ast.st_dev, ast.st_ino);
        }
        if (a.id->first == st.st_dev && a.id->second == st.st_ino) {
          problem("a symbolic link loop: it is " + a.path + " again, a node that contains it");
          return;
        }
      }
    }
    if (depth > max_depth) {
      problem("nested more than " + std::to_string(max_depth) + " levels deep");
      return;
    }
    // What the node holds, listed once: only what is there is opened.
    auto held = entries_in(fd);
    auto find = [&](const char* name) -> const DirEntry* {
      auto it = std::lower_bound(held.begin(), held.end(), DirEntry{name, DT_UNKNOWN});
      return it != held.end() && it->name == name ? &*it : nullptr;
    };
    std::string read_problem;
    for (auto [file, into] : {std::pair{"kind", &RawNode::kind}, std::pair{"value", &RawNode::value},
                              std::pair{"outputs", &RawNode::outputs}})
      if (const DirEntry* e = find(file))
        nodes[me].*into = read_file_at(fd, file, read_problem, path + "/" + file, e->type == DT_REG);
    if (!read_problem.empty()) {
      problem(read_problem);
      return;
    }
    if (!find("inputs")) return;
    int inputs = ::openat(fd, "inputs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (inputs < 0) return;
    stages::Fd inputs_dir(inputs);
    auto entries = entries_in(inputs);
    nodes[me].entries = names_of(entries);
    ancestors.push_back({fd, std::nullopt, path});
    if (entries.size() > 1 && !fanned_out.exchange(true)) {
      fan_out(inputs, entries, path, depth);
    } else {
      for (const auto& e : entries) node(inputs, e, path + "/inputs/" + e.name, depth + 1);
    }
    ancestors.pop_back();
  }

  // The sub-trees of one node on a few threads, their nodes appended in
  // order afterwards: the same pre-order as one thread's.
  void fan_out(int inputs, const std::vector<DirEntry>& entries, const std::string& path, int depth) {
    std::vector<Walker> parts;
    for (std::size_t i = 0; i < entries.size(); ++i) parts.push_back({count, too_many, fanned_out, {}, ancestors});
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t i; (i = next.fetch_add(1)) < entries.size();)
        parts[i].node(inputs, entries[i], path + "/inputs/" + entries[i].name, depth + 1);
    };
    std::size_t threads = std::min<std::size_t>({entries.size(), std::max(1u, std::thread::hardware_concurrency()), 4});
    std::vector<std::thread> pool;
    try {
      for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    } catch (const std::system_error&) {
      // (No thread to spare: this one walks them all.)
    }
    work();
    for (auto& t : pool) t.join();
    for (auto& p : parts) std::move(p.nodes.begin(), p.nodes.end(), std::back_inserter(nodes));
  }
};

// Reads the task with the invoker's rights: for a user other than root in
// a child process (invoker.h), whose findings come back in a memory file.
RawTask read_raw(const std::string& taskdir, const Invoker& invoker) {
  stages::Fd result = as_invoker(invoker, [&] {
    RawTask raw;
    int root = ::open(taskdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
      raw.problem = "cannot open the task directory " + taskdir + ": " + std::strerror(errno);
    } else {
      stages::Fd root_fd(root);
      std::string problem;
      raw.inputs = read_file_at(root, "inputs", problem, "inputs");
      if (!problem.empty()) raw.problem = problem;
      int comps = ::openat(root, "computations", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (comps >= 0) {
        stages::Fd comps_fd(comps);
        for (const auto& e : entries_in(comps)) {
          struct stat st {};
          if (::fstatat(comps, e.name.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)) raw.computations.push_back(e.name);
        }
      }
      std::atomic<std::size_t> count{0};
      std::atomic<bool> too_many{false}, fanned_out{false};
      Walker walker{count, too_many, fanned_out, {}, {}};
      walker.node(root, {"workflow", DT_UNKNOWN}, "workflow", 0);
      raw.nodes = std::move(walker.nodes);
      raw.too_many = too_many;
    }
    std::string text = serialise(raw);
    int fd = ::memfd_create("ce-run-task", MFD_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("cannot make a memory file: ") + std::strerror(errno));
    for (std::size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("cannot write a memory file: ") + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    return fd;
  });
  std::string text = stages::read_all(result.get(), "the task's files", std::size_t{256} << 20);
  try {
    return deserialise(text);
  } catch (const std::exception&) {
    RawTask raw;
    raw.problem = "the task's files could not be read back";
    return raw;
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// "NN-label" or "NN_MM-label".
struct SlotName {
  std::size_t first = 0, last = 0;
  std::string label;
};
std::optional<SlotName> parse_slot_name(const std::string& name) {
  auto digits = [&](std::size_t& at, std::size_t& value) {
    std::size_t start = at;
    value = 0;
    while (at < name.size() && std::isdigit(static_cast<unsigned char>(name[at])) && at - start < 6)
      value = value * 10 + static_cast<std::size_t>(name[at++] - '0');
    return at > start;
  };
  SlotName s;
  std::size_t at = 0;
  if (!digits(at, s.first)) return std::nullopt;
  s.last = s.first;
  if (at < name.size() && name[at] == '_') {
    ++at;
    if (!digits(at, s.last)) return std::nullopt;
  }
  if (at >= name.size() || name[at] != '-' || s.last < s.first) return std::nullopt;
  s.label = name.substr(at + 1);
  return s;
}

class Builder {
 public:
  Builder(const std::string& taskdir, const TaskLoadOptions& options, RawTask raw)
      : options_(options), raw_(std::move(raw)) {
    task_.dir = taskdir;
    for (std::size_t i = 0; i < raw_.nodes.size(); ++i) by_path_[raw_.nodes[i].path] = i;
  }

  LoadedTask build() {
    LoadedTask loaded;
    if (!raw_.problem.empty()) {
      problems_.push_back(raw_.problem);
    } else {
      if (!raw_.inputs) {
        problems_.push_back(task_.shown("inputs") + ": missing; write the task's input names in it, one a line "
                                                    "(an empty file for a task without inputs)");
      } else {
        for (const auto& line : lines_of(*raw_.inputs))
          if (!line.empty()) task_.input_names.push_back(line);
      }
      if (raw_.too_many)
        problems_.push_back(task_.shown("workflow") + ": the task has more than " + std::to_string(max_nodes) +
                            " nodes");
      std::optional<std::size_t> root;
      if (!raw_.nodes.empty() && raw_.nodes[0].problem == "missing")
        problems_.push_back(task_.shown("workflow") + ": missing; a task's root node is the directory workflow/");
      else if (!raw_.nodes.empty())
        root = node(0, "TASK", 0, 0, 0);
      if (root && problems_.empty()) {
        task_.outputs = task_.nodes[*root].passes;
        order(*root);
      }
    }
    loaded.problems = problems_;
    if (problems_.empty()) loaded.task = std::move(task_);
    return loaded;
  }

 private:
  void problem(const std::string& where, const std::string& what) { problems_.push_back(task_.shown(where) + ": " + what); }

  // The computation named `name`, loaded once; nullopt after a problem.
  std::optional<std::size_t> computation(const std::string& name, const std::string& where) {
    if (auto it = computations_.find(name); it != computations_.end()) return it->second;
    std::optional<std::size_t> index;
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        std::find(raw_.computations.begin(), raw_.computations.end(), name) == raw_.computations.end()) {
      problem(where, "no computation '" + name + "' in " + task_.shown("computations") + " (there are: " +
                         quoted_list(raw_.computations) + ")");
    } else {
      TaskComputation c;
      c.name = name;
      c.dir = task_.shown("computations/" + name);
      CallRequest request;
      request.compdir = c.dir;
      request.invoker = options_.invoker;
      request.dirty = options_.dirty;
      request.mode = options_.mode;
      try {
        c.prepared = prepare_computation(request);
        if (!c.prepared->contract)
          problems_.push_back(c.dir + ": not a CompEval computation (it has no outputs file); a task's "
                                      "computation names its inputs, outputs and exec");
        else
          index = task_.computations.size(), task_.computations.push_back(std::move(c));
      } catch (const std::exception& e) {
        problems_.push_back(e.what());
      }
    }
    computations_[name] = index;
    return index;
  }

  // Checks the raw node and its sub-nodes; the node's index, or nullopt
  // when it is unusable (its problems are noted).
  std::optional<std::size_t> node(std::size_t raw_index, const std::string& label, std::size_t first,
                                  std::size_t last, int depth) {
    const RawNode& raw = raw_.nodes[raw_index];
    if (!raw.problem.empty()) {
      problem(raw.path, raw.problem);
      return std::nullopt;
    }
    TaskNode n;
    n.path = raw.path;
    n.label = label;
    n.first_slot = first;
    n.last_slot = last;
    n.depth = depth;
    std::string kind = raw.kind ? first_line(*raw.kind) : std::string();
    std::string value = raw.value ? first_line(*raw.value) : std::string();
    n.value = value;
    bool ok = true;
    if (!raw.kind) {
      problem(raw.path + "/kind", "missing; write computation, input or literal in it");
      ok = false;
    } else if (kind == "computation") {
      n.kind = NodeKind::computation;
    } else if (kind == "input") {
      n.kind = NodeKind::input;
    } else if (kind == "literal") {
      n.kind = NodeKind::literal;
    } else {
      problem(raw.path + "/kind:1:1", "unknown kind '" + kind + "'; it must be computation, input or literal");
      ok = false;
    }
    if (!raw.value) {
      problem(raw.path + "/value", "missing; write the node's value in it (a computation's name, an input's name "
                                   "or a path in the GFS)");
      return std::nullopt;
    }
    if (value.empty()) {
      problem(raw.path + "/value:1:1", "empty; write the node's value on its first line");
      return std::nullopt;
    }
    if (!ok) return std::nullopt;
    if (n.kind == NodeKind::input) {
      auto it = std::find(task_.input_names.begin(), task_.input_names.end(), value);
      if (it == task_.input_names.end()) {
        problem(raw.path + "/value:1:1", "'" + value + "' is not one of the task's inputs (" +
                                             task_.shown("inputs") + ": " + quoted_list(task_.input_names) + ")");
        return std::nullopt;
      }
      n.passes.push_back({TaskSource::Kind::input, static_cast<std::size_t>(it - task_.input_names.begin()), 0});
    } else if (n.kind == NodeKind::literal) {
      fs::path p(value);
      if (p.is_absolute() || std::any_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; })) {
        problem(raw.path + "/value:1:1", "the literal '" + value + "' must be a path inside the GFS, relative to it, "
                                                                   "without '..'");
        return std::nullopt;
      }
      if (!options_.gfs.empty()) {
        std::string full = (fs::path(options_.gfs) / p).lexically_normal().string();
        try {
          stages::Fd fd = open_as_invoker(options_.invoker, full, O_RDONLY | O_NONBLOCK);
          struct stat st {};
          if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
            throw std::runtime_error("not a regular file");
        } catch (const std::exception& e) {
          problem(raw.path + "/value:1:1", "the literal '" + value + "' is not in the GFS (" + full + ": " +
                                               e.what() + "); put the file there, or fix the path");
          return std::nullopt;
        }
      }
      auto it = std::find(task_.literals.begin(), task_.literals.end(), p.lexically_normal().string());
      if (it == task_.literals.end()) it = task_.literals.insert(it, p.lexically_normal().string());
      n.passes.push_back({TaskSource::Kind::literal, static_cast<std::size_t>(it - task_.literals.begin()), 0});
    } else {
      auto c = computation(value, raw.path + "/value:1:1");
      // The sub-nodes are checked even when the computation is not usable.
      std::vector<std::pair<SlotName, std::size_t>> slots;  // name, raw index
      for (const auto& e : raw.entries) {
        std::string path = raw.path + "/inputs/" + e;
        auto s = parse_slot_name(e);
        if (!s) {
          problem(path, "not a sub-node's name; name it NN-label (argument slot NN, from 00) or NN_MM-label "
                        "(slots NN to MM)");
          continue;
        }
        slots.emplace_back(*s, by_path_.at(path));
      }
      std::sort(slots.begin(), slots.end(), [](const auto& a, const auto& b) {
        return a.first.first != b.first.first ? a.first.first < b.first.first : a.second < b.second;
      });
      std::size_t next = 0;
      bool slots_ok = slots.size() == raw.entries.size();
      for (std::size_t k = 0; k < slots.size(); ++k) {
        const auto& [s, index] = slots[k];
        const std::string& path = raw_.nodes[index].path;
        if (s.first > next) {
          problem(raw.path + "/inputs", s.first == next + 1 ? "argument slot " + std::to_string(next) + " is not filled"
                                                            : "argument slots " + std::to_string(next) + " to " +
                                                                  std::to_string(s.first - 1) + " are not filled");
          slots_ok = false;
        } else if (s.first < next) {
          problem(path, "fills argument slot " + std::to_string(s.first) + ", which " +
                            task_.shown(raw_.nodes[slots[k - 1].second].path) + " fills too");
          slots_ok = false;
        }
        next = std::max(next, s.last + 1);
      }
      if (c && slots_ok) {
        const auto& inputs = task_.computations[*c].contract().inputs;
        if (next != inputs.size())
          problem(raw.path, "the computation " + value + " takes " + std::to_string(inputs.size()) + " input" +
                                (inputs.size() == 1 ? "" : "s") + " (" + quoted_list(inputs) + "), but the sub-nodes in " +
                                raw.path + "/inputs fill " + std::to_string(next) + " slot" + (next == 1 ? "" : "s"));
      }
      std::vector<std::size_t> children;
      bool children_ok = true;
      for (const auto& [s, index] : slots) {
        auto child = node(index, s.label, s.first, s.last, depth + 1);
        if (!child) {
          children_ok = false;
          continue;
        }
        std::size_t wanted = s.last - s.first + 1, got = task_.nodes[*child].passes.size();
        if (got != wanted) {
          problem(raw_.nodes[index].path,
                  "fills slot" + (wanted == 1 ? " " + std::to_string(s.first)
                                              : "s " + std::to_string(s.first) + " to " + std::to_string(s.last)) +
                      " (" + std::to_string(wanted) + " file" + (wanted == 1 ? "" : "s") + ") but passes up " +
                      std::to_string(got) + (task_.nodes[*child].kind == NodeKind::computation
                                                 ? " (select as many outputs in its outputs file)"
                                                 : " (an input or a literal passes up one; name it NN-label)"));
          children_ok = false;
        }
        children.push_back(*child);
      }
      if (!c) return std::nullopt;
      const auto& outputs = task_.computations[*c].contract().outputs;
      if (raw.outputs) {
        n.selected = true;
        auto lines = lines_of(*raw.outputs);
        for (std::size_t l = 0; l < lines.size(); ++l) {
          const std::string& line = lines[l];
          if (line.empty()) continue;
          std::string where = raw.path + "/outputs:" + std::to_string(l + 1) + ":1";
          bool digits = line.size() <= 6 && std::all_of(line.begin(), line.end(), [](char ch) {
                          return std::isdigit(static_cast<unsigned char>(ch));
                        });
          if (!digits) {
            problem(where, "'" + line + "' is not an output index; write one number a line (0 is the first output)");
            ok = false;
            continue;
          }
          std::size_t k = std::stoul(line);
          if (k >= outputs.size()) {
            std::string names;
            for (std::size_t o = 0; o < outputs.size(); ++o)
              names += (o ? ", " : "") + std::to_string(o) + " = " + outputs[o];
            problem(where, "output " + std::to_string(k) + " is out of range: the computation " + value + " has " +
                               std::to_string(outputs.size()) + " output" + (outputs.size() == 1 ? "" : "s") + " (" +
                               names + ")");
            ok = false;
            continue;
          }
          n.selection.push_back(k);
        }
        if (ok && n.selection.empty()) {
          problem(raw.path + "/outputs", "selects no output; write the indexes of the outputs to pass up, one a line");
          ok = false;
        }
      } else {
        for (std::size_t k = 0; k < outputs.size(); ++k) n.selection.push_back(k);
      }
      if (!ok || !children_ok || !slots_ok) return std::nullopt;
      n.children = children;
      // The call: identical sub-expressions are one.
      TaskCall call;
      call.computation = *c;
      std::string key = std::to_string(*c) + "(";
      for (std::size_t child : children)
        for (const auto& s : task_.nodes[child].passes) {
          call.inputs.push_back(s);
          key += std::to_string(static_cast<int>(s.kind)) + ":" + std::to_string(s.index) + ":" +
                 std::to_string(s.output) + ",";
          if (s.kind == TaskSource::Kind::output &&
              std::find(call.needs.begin(), call.needs.end(), s.index) == call.needs.end())
            call.needs.push_back(s.index);
        }
      if (call.inputs.size() != task_.computations[*c].contract().inputs.size()) return std::nullopt;
      auto [it, fresh] = calls_.emplace(key, task_.calls.size());
      if (fresh) task_.calls.push_back(std::move(call));
      n.call = it->second;
      for (std::size_t k : n.selection) n.passes.push_back({TaskSource::Kind::output, n.call, k});
    }
    task_.nodes.push_back(std::move(n));
    return task_.nodes.size() - 1;
  }

  // Post-order, sub-nodes in name order; each call's nodes in that order.
  void order(std::size_t root) {
    std::vector<std::pair<std::size_t, bool>> stack{{root, false}};
    while (!stack.empty()) {
      auto [n, expanded] = stack.back();
      stack.pop_back();
      if (expanded) {
        task_.post_order.push_back(n);
        if (task_.nodes[n].kind == NodeKind::computation) task_.calls[task_.nodes[n].call].nodes.push_back(n);
        continue;
      }
      stack.emplace_back(n, true);
      const auto& children = task_.nodes[n].children;
      for (auto it = children.rbegin(); it != children.rend(); ++it) stack.emplace_back(*it, false);
    }
    // The root must be nodes[0]: the builder adds a node after its sub-nodes.
    std::size_t count = task_.nodes.size();
    std::vector<std::size_t> to(count);
    for (std::size_t i = 0; i < count; ++i) to[i] = count - 1 - i;
    std::reverse(task_.nodes.begin(), task_.nodes.end());
    for (auto& n : task_.nodes)
      for (auto& c : n.children) c = to[c];
    for (auto& p : task_.post_order) p = to[p];
    for (auto& c : task_.calls)
      for (auto& n : c.nodes) n = to[n];
  }

  const TaskLoadOptions& options_;
  RawTask raw_;
  Task task_;
  std::map<std::string, std::size_t> by_path_;
  std::map<std::string, std::optional<std::size_t>> computations_;
  std::map<std::string, std::size_t> calls_;
  std::vector<std::string> problems_;
};

}  // namespace

std::string Task::shown(const std::string& relative) const { return (fs::path(dir) / relative).lexically_normal().string(); }

bool is_task(const std::string& dir) {
  boost::system::error_code ec;
  return fs::is_directory(fs::path(dir) / "workflow", ec);
}

LoadedTask load_task(const std::string& taskdir, const TaskLoadOptions& options) {
  try {
    return Builder(taskdir, options, read_raw(taskdir, options.invoker)).build();
  } catch (const std::exception& e) {
    LoadedTask loaded;
    loaded.problems.push_back(taskdir + ": " + e.what());
    return loaded;
  }
}

}  // namespace ce::runner
