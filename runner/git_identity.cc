#include "runner/git_identity.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <boost/filesystem.hpp>
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/repository.h>
#include <memory>

#include "runner/git_index_scan.h"
#include "stages/host_files.h"
#include "stages/stage_key.h"

namespace ce::runner {

namespace fs = boost::filesystem;

namespace {

struct Library {
  Library() {
    git_libgit2_init();
    // ce-run runs as root on its users' repositories: libgit2's check that
    // the repository belongs to the current user would refuse them all.
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
  }
  ~Library() { git_libgit2_shutdown(); }
};

void ensure_library() { static Library library; }

std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Repository = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using Commit = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using Tree = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using TreeEntry = std::unique_ptr<git_tree_entry, Deleter<git_tree_entry, git_tree_entry_free>>;
using Reference = std::unique_ptr<git_reference, Deleter<git_reference, git_reference_free>>;

std::string hex(const git_oid* oid) {
  char text[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(text, sizeof text, oid);
  return text;
}

using Index = std::unique_ptr<git_index, Deleter<git_index, git_index_free>>;
using Diff = std::unique_ptr<git_diff, Deleter<git_diff, git_diff_free>>;

// Whether the index's cache-tree root is valid and equals `head_root`.
// git_index_write_tree_to returns the cached ID without writing when it is
// valid; aimed at a scratch repository whose only object store is an empty
// in-memory one, it cannot write to the user's repository either way.
bool cache_tree_is(git_index* index, const git_oid* head_root) {
  git_repository* scratch = nullptr;
  git_odb* odb = nullptr;
  git_odb_backend* mempack = nullptr;
  bool equal = false;
  if (git_repository_new(&scratch) == 0 && git_odb_new(&odb) == 0 && git_mempack_new(&mempack) == 0 &&
      git_odb_add_backend(odb, mempack, 1) == 0) {
    mempack = nullptr;  // the object store owns it now
    git_repository_set_odb(scratch, odb);
    git_oid root;
    equal = git_index_write_tree_to(&root, index, scratch) == 0 && git_oid_equal(&root, head_root);
  }
  if (mempack) mempack->free(mempack);
  git_odb_free(odb);
  git_repository_free(scratch);
  git_error_clear();
  return equal;
}

// What differs between HEAD, the index and the work tree under COMPDIR:
// repository-relative paths, possibly twice. What git_status_list_new
// computes, but libgit2 only looks at what scan_index cannot prove clean
// (git_index_scan.h).
std::vector<std::string> dirty_paths(git_repository* repo, const std::string& subpath, git_tree* head_root,
                                     const std::string& head_subtree, const fs::path& root) {
  git_oid subtree;
  git_oid_fromstr(&subtree, head_subtree.c_str());
  IndexScan scan = scan_index(repo, subpath, subtree);
  std::vector<std::string> out;
  if (scan.kind == IndexScan::Kind::clean) return out;
  auto fail = [&]() -> std::vector<std::string> {
    throw GitError("cannot read the status of " + root.string() + ": " + last_error());
  };
  git_index* index_raw = nullptr;
  if (git_repository_index(&index_raw, repo) != 0) fail();
  Index index(index_raw);
  // git_status_list_new's flags for untracked files, recursively, without
  // submodules; the pathspec is literal: COMPDIR, or the scan's paths.
  git_diff_options options = GIT_DIFF_OPTIONS_INIT;
  options.flags = GIT_DIFF_INCLUDE_TYPECHANGE | GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS |
                  GIT_DIFF_IGNORE_SUBMODULES | GIT_DIFF_DISABLE_PATHSPEC_MATCH;
  std::string compdir = subpath;
  char* compdir_paths[] = {compdir.data()};
  git_strarray compdir_spec = {compdir_paths, compdir.empty() ? 0u : 1u};
  auto collect = [&](git_diff* diff) {
    for (std::size_t i = 0, n = git_diff_num_deltas(diff); i < n; ++i) {
      const git_diff_delta* d = git_diff_get_delta(diff, i);
      out.push_back(d->new_file.path ? d->new_file.path : d->old_file.path);
    }
  };
  bool partial = scan.kind == IndexScan::Kind::partial;
  if (!(partial ? scan.index_matches_head : cache_tree_is(index.get(), git_tree_id(head_root)))) {
    git_diff* raw = nullptr;
    options.pathspec = compdir_spec;
    if (git_diff_tree_to_index(&raw, repo, head_root, index.get(), &options) != 0) fail();
    Diff diff(raw);
    collect(diff.get());
  }
  std::vector<char*> listed;
  for (std::string& p : scan.paths) listed.push_back(p.data());
  options.pathspec = partial ? git_strarray{listed.data(), listed.size()} : compdir_spec;
  if (!partial || !listed.empty()) {
    git_diff* raw = nullptr;
    if (git_diff_index_to_workdir(&raw, repo, index.get(), &options) != 0) fail();
    Diff diff(raw);
    collect(diff.get());
  }
  return out;
}

}  // namespace

GitIdentity identify(const std::string& compdir_path) {
  ensure_library();
  fs::path compdir = fs::canonical(compdir_path);
  GitIdentity id;

  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, compdir.c_str(), 0, nullptr) != 0)
    throw GitError(compdir.string() + " is not inside a Git repository; ce-run keys a computation by its commit: "
                   "run `git init' and commit it");
  Repository repo(raw);
  const char* workdir = git_repository_workdir(repo.get());
  if (workdir == nullptr) throw GitError(compdir.string() + " is inside a bare Git repository; use a work tree");
  id.workdir = workdir;
  fs::path root = fs::canonical(id.workdir);
  id.subpath = fs::relative(compdir, root).generic_string();
  if (id.subpath == ".") id.subpath.clear();
  id.shallow = git_repository_is_shallow(repo.get()) == 1;

  if (git_repository_head_unborn(repo.get()) == 1)
    throw GitError("the Git repository at " + root.string() + " has no commit yet; commit the computation first");
  git_reference* head_raw = nullptr;
  if (git_repository_head(&head_raw, repo.get()) != 0)
    throw GitError("cannot read HEAD of " + root.string() + ": " + last_error());
  Reference head(head_raw);
  if (git_reference_is_branch(head.get())) id.branch = git_reference_shorthand(head.get());
  git_oid commit_oid;
  if (git_reference_name_to_id(&commit_oid, repo.get(), "HEAD") != 0)
    throw GitError("cannot resolve HEAD of " + root.string() + ": " + last_error());
  id.commit = hex(&commit_oid);

  git_commit* commit_raw = nullptr;
  if (git_commit_lookup(&commit_raw, repo.get(), &commit_oid) != 0)
    throw GitError("cannot read commit " + id.commit + ": " + last_error());
  Commit commit(commit_raw);
  git_tree* tree_raw = nullptr;
  if (git_commit_tree(&tree_raw, commit.get()) != 0)
    throw GitError("cannot read the tree of commit " + id.commit + ": " + last_error());
  Tree tree(tree_raw);
  if (id.subpath.empty()) {
    id.tree = hex(git_tree_id(tree.get()));
  } else {
    git_tree_entry* entry_raw = nullptr;
    if (git_tree_entry_bypath(&entry_raw, tree.get(), id.subpath.c_str()) != 0)
      throw GitError(compdir.string() + " is not in commit " + id.commit.substr(0, 12) +
                     " (HEAD): add and commit it");
    TreeEntry entry(entry_raw);
    if (git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE)
      throw GitError(compdir.string() + " is not a directory in commit " + id.commit.substr(0, 12));
    id.tree = hex(git_tree_entry_id(entry.get()));
  }

  std::string content = id.tree;
  for (const auto& path : dirty_paths(repo.get(), id.subpath, tree.get(), id.tree, root)) {
    if (!id.subpath.empty() && path.rfind(id.subpath + "/", 0) != 0) continue;
    std::string relative = id.subpath.empty() ? path : path.substr(id.subpath.size() + 1);
    if (relative == "docker-container" || relative.rfind("docker-container.", 0) == 0) continue;
    id.dirty_files.push_back(relative);
  }
  std::sort(id.dirty_files.begin(), id.dirty_files.end());
  // A file both staged and changed again comes from both diffs.
  id.dirty_files.erase(std::unique(id.dirty_files.begin(), id.dirty_files.end()), id.dirty_files.end());
  if (id.dirty_files.empty()) {
    id.content_tree = id.tree;
  } else {
    for (const auto& relative : id.dirty_files) {
      fs::path file = compdir / relative;
      git_oid blob;
      content += "\n" + relative + " ";
      if (fs::is_regular_file(file) && git_odb_hashfile(&blob, file.c_str(), GIT_OBJECT_BLOB) == 0)
        content += hex(&blob);
      else
        content += "-";
    }
    id.content_tree = "dirty-" + stages::sha256_hex(content).substr(0, 40);
  }
  return id;
}

std::vector<std::string> branch_trees(const std::string& compdir) {
  auto id = identify(compdir);
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, compdir.c_str(), 0, nullptr) != 0) return {id.tree};
  Repository repo(raw);
  std::vector<std::string> trees{id.tree};
  git_branch_iterator* it = nullptr;
  if (git_branch_iterator_new(&it, repo.get(), GIT_BRANCH_LOCAL) != 0) return trees;
  git_reference* ref = nullptr;
  git_branch_t type;
  while (git_branch_next(&ref, &type, it) == 0) {
    Reference branch(ref);
    git_object* peeled = nullptr;
    if (git_reference_peel(&peeled, branch.get(), GIT_OBJECT_TREE) != 0) continue;
    Tree tree(reinterpret_cast<git_tree*>(peeled));
    std::string found;
    if (id.subpath.empty()) {
      found = hex(git_tree_id(tree.get()));
    } else {
      git_tree_entry* entry = nullptr;
      if (git_tree_entry_bypath(&entry, tree.get(), id.subpath.c_str()) == 0) {
        TreeEntry e(entry);
        found = hex(git_tree_entry_id(e.get()));
      }
    }
    if (!found.empty() && std::find(trees.begin(), trees.end(), found) == trees.end()) trees.push_back(found);
  }
  git_branch_iterator_free(it);
  return trees;
}

bool is_ancestor(const std::string& dir, const std::string& ancestor, const std::string& descendant) {
  ensure_library();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, dir.c_str(), 0, nullptr) != 0) return false;
  Repository repo(raw);
  git_oid a, d;
  if (git_oid_fromstr(&a, ancestor.c_str()) != 0 || git_oid_fromstr(&d, descendant.c_str()) != 0) return false;
  return git_graph_descendant_of(repo.get(), &d, &a) == 1;
}

std::string computation_id(const GitIdentity& identity) {
  return stages::sha256_hex("ce-run computation id 1\n" + identity.content_tree + "\n").substr(0, 40);
}

namespace {

using Blob = std::unique_ptr<git_blob, Deleter<git_blob, git_blob_free>>;

void write_tree(git_repository* repo, const git_tree* tree, int into, const std::string& shown) {
  for (std::size_t i = 0; i < git_tree_entrycount(tree); ++i) {
    const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
    std::string name = git_tree_entry_name(entry);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      throw GitError(shown + ": the tree holds the name '" + name + "', which no file may have");
    std::string path = shown + "/" + name;
    auto fail = [&](const std::string& what) { throw GitError("cannot write " + path + ": " + what); };
    git_filemode_t mode = git_tree_entry_filemode(entry);
    if (mode == GIT_FILEMODE_TREE || mode == GIT_FILEMODE_COMMIT) {
      if (::mkdirat(into, name.c_str(), 0755) != 0) fail(std::strerror(errno));
      if (mode == GIT_FILEMODE_COMMIT) continue;  // a submodule: not in this repository's objects
      stages::Fd sub(::openat(into, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) fail(std::strerror(errno));
      git_tree* raw = nullptr;
      if (git_tree_lookup(&raw, repo, git_tree_entry_id(entry)) != 0) fail(last_error());
      Tree child(raw);
      write_tree(repo, child.get(), sub.get(), path);
      continue;
    }
    git_blob* raw = nullptr;
    if (git_blob_lookup(&raw, repo, git_tree_entry_id(entry)) != 0) fail(last_error());
    Blob blob(raw);
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
    std::size_t size = static_cast<std::size_t>(git_blob_rawsize(blob.get()));
    if (mode == GIT_FILEMODE_LINK) {
      if (::symlinkat(std::string(data, size).c_str(), into, name.c_str()) != 0) fail(std::strerror(errno));
      continue;
    }
    mode_t file_mode = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
    stages::Fd fd(::openat(into, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, file_mode));
    if (!fd) fail(std::strerror(errno));
    for (std::size_t done = 0; done < size;) {
      ssize_t n = ::write(fd.get(), data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd.get(), file_mode) != 0) fail(std::strerror(errno));  // whatever the umask
  }
}

}  // namespace

void export_tree(const std::string& dir, const std::string& tree_hex, int into) {
  ensure_library();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, dir.c_str(), 0, nullptr) != 0)
    throw GitError(dir + " is not inside a Git repository: " + last_error());
  Repository repo(raw);
  git_oid oid;
  if (git_oid_fromstr(&oid, tree_hex.c_str()) != 0) throw GitError("'" + tree_hex + "' is not a tree's ID");
  git_tree* tree_raw = nullptr;
  if (git_tree_lookup(&tree_raw, repo.get(), &oid) != 0)
    throw GitError("cannot read the tree " + tree_hex + " of " + dir + ": " + last_error());
  Tree tree(tree_raw);
  write_tree(repo.get(), tree.get(), into, dir);
}

}  // namespace ce::runner
