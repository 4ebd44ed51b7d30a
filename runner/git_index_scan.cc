#include "runner/git_index_scan.h"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <string_view>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace ce::runner {

namespace {

struct Entry {
  std::uint32_t ctime_s, ctime_ns, mtime_s, mtime_ns, ino, mode, uid, gid, size;
  std::uint32_t path_offset, path_length;  // the whole path, in `names`
  std::uint32_t base_offset;               // its last component, in `names`
};

struct Directory {
  std::string path;                        // relative to COMPDIR; "" is COMPDIR
  std::vector<std::string_view> children;  // the tracked names in it, files and directories
  std::vector<std::uint32_t> files;        // its tracked files, indices into the entries
};

std::uint32_t be32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}
std::uint16_t be16(const unsigned char* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return ntohs(v);
}

bool read_whole(const std::string& path, std::string& data, struct stat& st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fstat(fd, &st) == 0;
  if (ok) {
    data.resize(static_cast<std::size_t>(st.st_size));
    for (std::size_t got = 0; ok && got < data.size();) {
      ssize_t n = ::read(fd, data.data() + got, data.size() - got);
      if (n <= 0) ok = false;
      else got += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  return ok;
}

// One node of the TREE extension and its subtrees; records the node at the
// path `components` (found, valid, its oid).
struct TreeSearch {
  const std::vector<std::string>& components;
  bool found = false, valid = false;
  unsigned char oid[20] = {};
};

const unsigned char* parse_tree_node(const unsigned char* p, const unsigned char* end, TreeSearch& search,
                                     std::size_t depth, bool on_path) {
  if (depth > 4096) return nullptr;  // a hostile index must not exhaust the stack
  auto nul = static_cast<const unsigned char*>(std::memchr(p, 0, static_cast<std::size_t>(end - p)));
  if (!nul) return nullptr;
  std::string_view name(reinterpret_cast<const char*>(p), static_cast<std::size_t>(nul - p));
  p = nul + 1;
  // "ENTRIES SP SUBTREES LF"; ENTRIES is -1 for an invalidated node.
  std::string numbers(reinterpret_cast<const char*>(p), std::min<std::size_t>(static_cast<std::size_t>(end - p), 32));
  char* q = nullptr;
  long entries = std::strtol(numbers.c_str(), &q, 10);
  if (*q != ' ') return nullptr;
  long subtrees = std::strtol(q + 1, &q, 10);
  if (*q != '\n') return nullptr;
  p += (q - numbers.c_str()) + 1;
  const auto& components = search.components;
  bool matched = on_path && depth <= components.size() &&
                 (depth == 0 ? name.empty() : name == components[depth - 1]);
  bool here = matched && depth == components.size();
  if (entries >= 0) {
    if (end - p < 20) return nullptr;
    if (here) {
      search.found = search.valid = true;
      std::memcpy(search.oid, p, 20);
    }
    p += 20;
  } else if (here) {
    search.found = true;
    search.valid = false;
  }
  for (long i = 0; i < subtrees && p; ++i) p = parse_tree_node(p, end, search, depth + 1, matched);
  return p;
}

bool is_dot_or_git(const char* name, bool at_work_tree_root) {
  return (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) ||
         (at_work_tree_root && std::strcmp(name, ".git") == 0);
}

}  // namespace

IndexScan scan_index(git_repository* repo, const std::string& subpath, const git_oid& head_subtree) {
  IndexScan result;
  auto unknown = [&](const std::string& why) {
    result.kind = IndexScan::Kind::unknown;
    result.why = why;
    return result;
  };
  const char* workdir_raw = git_repository_workdir(repo);
  if (!workdir_raw) return unknown("a bare repository");
  std::string workdir = workdir_raw;  // with a trailing '/'
  {
    // Case-insensitive repositories match names loosely: libgit2's business.
    git_config* config = nullptr;
    int ignorecase = 0;
    if (git_repository_config_snapshot(&config, repo) != 0) return unknown("no configuration");
    if (git_config_get_bool(&ignorecase, config, "core.ignorecase") != 0) {
      git_error_clear();
      ignorecase = 0;
    }
    git_config_free(config);
    if (ignorecase) return unknown("core.ignorecase");
  }
  git_buf index_buffer = GIT_BUF_INIT;
  if (git_repository_item_path(&index_buffer, repo, GIT_REPOSITORY_ITEM_INDEX) != 0) return unknown("no index path");
  std::string index_path(index_buffer.ptr);
  git_buf_dispose(&index_buffer);

  // The index: "DIRC" VERSION COUNT, the entries, extensions, a checksum.
  std::string data;
  struct stat index_stat {};
  if (!read_whole(index_path, data, index_stat)) return unknown("cannot read the index");
  auto begin = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* end = begin + data.size();
  if (data.size() < 12 + 20 || std::memcmp(begin, "DIRC", 4) != 0) return unknown("not an index");
  std::uint32_t version = be32(begin + 4), count = be32(begin + 8);
  if (version < 2 || version > 4) return unknown("index version " + std::to_string(version));
  end -= 20;  // the SHA-1 checksum
  const std::string prefix = subpath.empty() ? std::string() : subpath + "/";
  std::vector<Entry> entries;
  entries.reserve(std::min<std::size_t>(count, data.size() / 62));  // a bogus count must not exhaust memory
  std::string names;
  names.reserve(data.size());
  std::string previous;  // version 4 compresses each path against the previous one
  const unsigned char* p = begin + 12;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (end - p < 62) return unknown("a truncated index");
    Entry e;
    e.ctime_s = be32(p);
    e.ctime_ns = be32(p + 4);
    e.mtime_s = be32(p + 8);
    e.mtime_ns = be32(p + 12);
    e.ino = be32(p + 20);
    e.mode = be32(p + 24);
    e.uid = be32(p + 28);
    e.gid = be32(p + 32);
    e.size = be32(p + 36);
    std::uint16_t flags = be16(p + 60);
    std::uint16_t extended = 0;
    const unsigned char* q = p + 62;
    if (flags & 0x4000) {
      if (version < 3) return unknown("extended flags in a version 2 index");
      if (end - p < 64) return unknown("a truncated index");
      extended = be16(q);
      q += 2;
    }
    std::string_view path;
    if (version == 4) {
      // A varint (bytes to strip from the previous path), then the rest.
      if (q >= end) return unknown("a truncated index");
      std::uint64_t strip = *q & 127;
      while (*q & 128) {
        if (++q >= end || strip > (std::uint64_t(1) << 40)) return unknown("a bad version 4 path");
        strip = ((strip + 1) << 7) + (*q & 127);
      }
      if (++q >= end) return unknown("a truncated index");
      auto nul = static_cast<const unsigned char*>(std::memchr(q, 0, static_cast<std::size_t>(end - q)));
      if (!nul || strip > previous.size()) return unknown("a bad version 4 path");
      previous.resize(previous.size() - strip);
      previous.append(reinterpret_cast<const char*>(q), static_cast<std::size_t>(nul - q));
      path = previous;
      p = nul + 1;
    } else {
      auto nul = static_cast<const unsigned char*>(std::memchr(q, 0, static_cast<std::size_t>(end - q)));
      if (!nul) return unknown("a bad path");
      path = std::string_view(reinterpret_cast<const char*>(q), static_cast<std::size_t>(nul - q));
      std::size_t length = static_cast<std::size_t>(q - p) + path.size();
      std::size_t padded = (length + 8) & ~std::size_t(7);  // NUL-padded to a multiple of 8
      if (padded > static_cast<std::size_t>(end - p)) return unknown("a truncated index");
      p += padded;
    }
    if (path.compare(0, prefix.size(), prefix) != 0) continue;  // outside COMPDIR
    if (flags & 0x3000) return unknown("a merge conflict");
    if (flags & 0x8000) return unknown("assume-valid entries");
    if (extended & (0x4000 | 0x2000)) return unknown("skip-worktree or intent-to-add entries");
    if ((e.mode & 0170000) == 0160000) return unknown("a submodule");
    e.path_offset = static_cast<std::uint32_t>(names.size());
    e.path_length = static_cast<std::uint32_t>(path.size());
    names.append(path);
    names.push_back('\0');
    entries.push_back(e);
  }

  // Extensions: the cache-tree (TREE); one we do not know and must
  // understand (lower-case signature: a split or sparse index) ends it.
  std::vector<std::string> components;
  for (std::size_t s = 0, t; s < subpath.size(); s = t + 1) {
    t = subpath.find('/', s);
    if (t == std::string::npos) t = subpath.size();
    components.push_back(subpath.substr(s, t - s));
  }
  TreeSearch search{components};
  while (end - p >= 8) {
    std::uint32_t size = be32(p + 4);
    const unsigned char* body = p + 8;
    if (size > static_cast<std::size_t>(end - body)) return unknown("a bad index extension");
    if (std::memcmp(p, "TREE", 4) == 0) {
      if (size > 0 && !parse_tree_node(body, body + size, search, 0, true)) return unknown("a bad cache-tree");
    } else if (p[0] >= 'a' && p[0] <= 'z') {
      return unknown("index extension " + std::string(reinterpret_cast<const char*>(p), 4));
    }
    p = body + size;
  }
  result.index_matches_head = search.found && search.valid && std::memcmp(search.oid, head_subtree.id, 20) == 0;
  if (!result.index_matches_head) result.why = "the index differs from HEAD (or has no valid cache-tree)";

  // The directories holding tracked files, with their tracked children
  // (views into `names`, which no longer grows).
  std::vector<Directory> directories;
  std::unordered_map<std::string_view, std::size_t> directory_index;
  auto ensure_directory = [&](auto&& self, std::string_view d) -> std::size_t {
    if (auto it = directory_index.find(d); it != directory_index.end()) return it->second;
    std::size_t index = directories.size();
    directories.push_back(Directory{std::string(d), {}, {}});
    directory_index.emplace(d, index);
    if (!d.empty()) {
      std::size_t slash = d.rfind('/');
      std::string_view parent = slash == std::string_view::npos ? std::string_view() : d.substr(0, slash);
      std::size_t parent_index = self(self, parent);
      directories[parent_index].children.push_back(slash == std::string_view::npos ? d : d.substr(slash + 1));
    }
    return index;
  };
  ensure_directory(ensure_directory, std::string_view());
  std::string_view last_directory;
  std::size_t last_index = 0;
  for (std::uint32_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    std::string_view relative(names.data() + e.path_offset + prefix.size(), e.path_length - prefix.size());
    std::size_t slash = relative.rfind('/');
    std::string_view d = slash == std::string_view::npos ? std::string_view() : relative.substr(0, slash);
    std::string_view base = slash == std::string_view::npos ? relative : relative.substr(slash + 1);
    if (d != last_directory || i == 0) {
      last_index = ensure_directory(ensure_directory, d);
      last_directory = d;
    }
    directories[last_index].children.push_back(base);
    directories[last_index].files.push_back(i);
    e.base_offset = static_cast<std::uint32_t>(base.data() - names.data());
  }

  // One pass per directory, the directories split over two threads by their
  // number of files: open it (O_NOFOLLOW: a tracked directory must still be
  // one), fstatat each tracked file in it, and count its names.
  const std::string compdir = workdir + prefix;
  int top = ::open(compdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top < 0) return unknown("cannot open " + compdir);
  std::atomic<bool> gave_up{false};
  std::vector<std::string> candidates[2], changed[2];
  std::string reasons[2];
  const std::size_t limit = entries.size() / 8 + 64;  // beyond this a full status costs no more
  std::size_t split = 0;
  for (std::size_t files = 0; split < directories.size() && files < entries.size() / 2; ++split)
    files += directories[split].files.size() + 1;
  auto work = [&](int k) {
    struct stat st {};
    std::size_t first = k ? split : 0, last = k ? directories.size() : split;
    for (std::size_t i = first; i < last && !gave_up.load(std::memory_order_relaxed); ++i) {
      const Directory& d = directories[i];
      int fd = ::openat(top, d.path.empty() ? "." : d.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {  // a tracked directory is gone or replaced: rare, libgit2 sorts it out
        gave_up = true;
        reasons[k] = "cannot open " + prefix + d.path;
        return;
      }
      bool suspect = false;
      for (std::uint32_t index : d.files) {
        const Entry& e = entries[index];
        const char* why = nullptr;
        if (::fstatat(fd, names.data() + e.base_offset, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          why = "missing: ";
        } else {
          std::uint32_t mode = S_ISLNK(st.st_mode)   ? 0120000
                               : S_ISREG(st.st_mode) ? ((st.st_mode & 0100) ? 0100755 : 0100644)
                                                     : 0;
          // Every field libgit2 may compare: at least as strict as it is.
          if (mode != e.mode || static_cast<std::uint32_t>(st.st_size) != e.size ||
              static_cast<std::uint32_t>(st.st_mtime) != e.mtime_s ||
              static_cast<std::uint32_t>(st.st_mtim.tv_nsec) != e.mtime_ns ||
              static_cast<std::uint32_t>(st.st_ctime) != e.ctime_s ||
              static_cast<std::uint32_t>(st.st_ctim.tv_nsec) != e.ctime_ns ||
              static_cast<std::uint32_t>(st.st_ino) != e.ino || static_cast<std::uint32_t>(st.st_uid) != e.uid ||
              static_cast<std::uint32_t>(st.st_gid) != e.gid)
            why = "changed: ";
          // Racy: not older than the index, so its stat data proves nothing.
          else if (e.mtime_s > static_cast<std::uint32_t>(index_stat.st_mtime) ||
                   (e.mtime_s == static_cast<std::uint32_t>(index_stat.st_mtime) &&
                    static_cast<std::uint32_t>(index_stat.st_mtim.tv_nsec) <= e.mtime_ns))
            why = "racy: ";
        }
        if (why) {
          suspect = true;
          changed[k].emplace_back(names.data() + e.path_offset, e.path_length);
          if (reasons[k].empty()) reasons[k] = why + changed[k].back();
          if (changed[k].size() > limit / 2) {
            gave_up = true;
            ::close(fd);
            return;
          }
        }
      }
      DIR* dir = ::fdopendir(fd);
      if (!dir) {
        ::close(fd);
        gave_up = true;
        reasons[k] = "cannot read " + prefix + d.path;
        return;
      }
      bool root = prefix.empty() && d.path.empty();
      // Every tracked child exists (files: just checked unless suspect;
      // directories: opened by this pass or it gives up), so when the
      // counts agree there is no other name here.
      std::size_t names_here = 0;
      while (dirent* de = ::readdir(dir))
        if (!is_dot_or_git(de->d_name, root)) ++names_here;
      if (suspect || names_here != d.children.size()) {
        std::vector<std::string_view> sorted(d.children);
        std::sort(sorted.begin(), sorted.end());
        ::rewinddir(dir);
        while (dirent* de = ::readdir(dir))
          if (!is_dot_or_git(de->d_name, root) &&
              !std::binary_search(sorted.begin(), sorted.end(), std::string_view(de->d_name)))
            candidates[k].push_back(prefix + (d.path.empty() ? std::string() : d.path + "/") + de->d_name);
      }
      ::closedir(dir);
    }
  };
  {
    std::thread helper(work, 1);
    work(0);
    helper.join();
  }
  ::close(top);
  if (gave_up) return unknown("many changes, or a tracked directory gone: " + (reasons[0].empty() ? reasons[1] : reasons[0]));
  for (int k = 0; k < 2; ++k) {
    result.paths.insert(result.paths.end(), changed[k].begin(), changed[k].end());
    result.paths.insert(result.paths.end(), candidates[k].begin(), candidates[k].end());
  }
  if (!result.paths.empty() && result.why.empty()) result.why = reasons[0].empty() ? reasons[1] : reasons[0];
  if (!changed[0].empty() || !changed[1].empty() || !result.index_matches_head) {
    result.kind = IndexScan::Kind::partial;
    return result;
  }
  // Other names must each be ignored by a pattern of their own, not merely
  // inside an ignored directory (where libgit2's walk may differ).
  std::unordered_map<std::string, bool> parent_ignored;
  for (int k = 0; k < 2; ++k) {
    for (const std::string& c : candidates[k]) {
      int ignored = 0;
      if (git_ignore_path_is_ignored(&ignored, repo, c.c_str()) != 0 || !ignored) {
        result.kind = IndexScan::Kind::partial;
        result.why = "untracked: " + c;
        return result;
      }
      std::size_t slash = c.rfind('/');
      if (slash == std::string::npos) continue;
      std::string parent = c.substr(0, slash);
      auto it = parent_ignored.find(parent);
      if (it == parent_ignored.end()) {
        int parent_is_ignored = 1;
        if (git_ignore_path_is_ignored(&parent_is_ignored, repo, parent.c_str()) != 0) parent_is_ignored = 1;
        it = parent_ignored.emplace(parent, parent_is_ignored != 0).first;
      }
      if (it->second) {
        result.kind = IndexScan::Kind::partial;
        result.why = "ignored inside an ignored directory: " + c;
        return result;
      }
    }
  }
  result.kind = IndexScan::Kind::clean;
  result.paths.clear();
  return result;
}

}  // namespace ce::runner
