#include "runner/service/checkout.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <git2.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/filesystem.hpp>

#include "stages/host_files.h"
#include "stages/stage_key.h"

namespace ce::runner::service {

namespace fs = boost::filesystem;

namespace {

std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

void check(int rc, const std::string& what) {
  if (rc < 0) throw std::runtime_error(what + ": " + last_error());
}

template <class T, void (*Free)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() {
    if (p) Free(p);
  }
};
using Repo = Owned<git_repository, git_repository_free>;
using Obj = Owned<git_object, git_object_free>;
using Module = Owned<git_submodule, git_submodule_free>;

bool hex_id(const std::string& s) {
  if (s.size() < 4 || s.size() > 40) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// `rev` of `repo` as a commit.
git_oid resolve(git_repository* repo, const std::string& rev, const std::string& shown) {
  Obj found;
  int rc = -1;
  if (hex_id(rev)) {
    rc = git_revparse_single(&found.p, repo, rev.c_str());
  } else {
    rc = git_revparse_single(&found.p, repo, ("refs/heads/" + rev).c_str());
    if (rc < 0) rc = git_revparse_single(&found.p, repo, rev.c_str());
  }
  if (rc < 0)
    throw std::runtime_error(shown + " has no " + (hex_id(rev) ? "commit " : "branch ") + rev + " (" + last_error() +
                             ")");
  Obj commit;
  check(git_object_peel(&commit.p, found.p, GIT_OBJECT_COMMIT), rev + " in " + shown + " is not a commit");
  return *git_object_id(commit.p);
}

std::string objects_of(git_repository* repo) {
  std::string common = git_repository_commondir(repo);
  if (!common.empty() && common.back() != '/') common += '/';
  return common + "objects";
}

void materialize(git_repository* source, const git_oid& commit, const std::string& dir, const std::string& shown);

struct ModuleWalk {
  git_repository* source;
  const std::string* dir;
  const std::string* shown;
  std::string error;
};

int each_module(git_submodule* sm, const char* name, void* payload) {
  auto* walk = static_cast<ModuleWalk*>(payload);
  try {
    const git_oid* head = git_submodule_head_id(sm);
    if (!head) return 0;  // not in the commit's tree
    std::string path = git_submodule_path(sm);
    std::string where = *walk->shown + "/" + path;
    // The submodule's repository: the source's own (initialised), else its
    // URL resolved as git would.
    Repo sub;
    Module source_module;
    if (git_submodule_lookup(&source_module.p, walk->source, name) == 0 &&
        git_submodule_open(&sub.p, source_module.p) == 0) {
    } else {
      git_buf url = GIT_BUF_INIT;
      const char* raw = git_submodule_url(sm);
      if (!raw || git_submodule_resolve_url(&url, walk->source, raw) < 0)
        throw std::runtime_error("the submodule " + where + " has no URL to find its commits at");
      std::string resolved(url.ptr, url.size);
      git_buf_dispose(&url);
      if (resolved.rfind("file://", 0) == 0) resolved = resolved.substr(7);
      check(git_repository_open(&sub.p, resolved.c_str()),
            "the submodule " + where + " is not initialised in the repository, and its URL " + resolved +
                " is not a repository on this host");
    }
    materialize(sub.p, *head, *walk->dir + "/" + path, where);
    return 0;
  } catch (const std::exception& e) {
    walk->error = e.what();
    return -1;
  }
}

// Fills `dir` with `commit` of `source`: a repository whose objects are the
// source's (alternates), HEAD detached at the commit, index and work tree
// checked out; then each submodule the same way.
void materialize(git_repository* source, const git_oid& commit, const std::string& dir, const std::string& shown) {
  {
    Repo init;
    check(git_repository_init(&init.p, dir.c_str(), 0), "cannot make a repository in " + dir);
  }
  stages::write_atomically(dir + "/.git/objects/info/alternates", objects_of(source) + "\n", 0644);
  Repo repo;
  check(git_repository_open(&repo.p, dir.c_str()), "cannot open " + dir);
  Obj target;
  check(git_object_lookup(&target.p, repo.p, &commit, GIT_OBJECT_COMMIT),
        shown + " has no commit " + std::string(git_oid_tostr_s(&commit)));
  git_checkout_options options = GIT_CHECKOUT_OPTIONS_INIT;
  options.checkout_strategy = GIT_CHECKOUT_FORCE;
  check(git_checkout_tree(repo.p, target.p, &options), "cannot check out " + shown);
  check(git_repository_set_head_detached(repo.p, &commit), "cannot set HEAD in " + dir);
  ModuleWalk walk{source, &dir, &shown, {}};
  if (git_submodule_foreach(repo.p, each_module, &walk) < 0)
    throw std::runtime_error(walk.error.empty() ? "cannot read the submodules of " + shown + ": " + last_error()
                                                : walk.error);
}

}  // namespace

Checkout check_out(const std::string& repository, const std::string& rev, const std::string& root,
                   const Invoker& invoker) {
  // The user's directory: made by root in root's directory, then given to
  // the user (nobody else can put anything in its place).
  std::string user_dir = root + "/" + std::to_string(invoker.uid);
  if (::mkdir(user_dir.c_str(), 0700) == 0) {
    if (::chown(user_dir.c_str(), invoker.uid, invoker.gid) != 0)
      throw std::runtime_error("cannot give " + user_dir + " to uid " + std::to_string(invoker.uid) + ": " +
                               std::strerror(errno));
  } else if (errno != EEXIST) {
    throw std::runtime_error("cannot make " + user_dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(user_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != invoker.uid)
    throw std::runtime_error(user_dir + " is not uid " + std::to_string(invoker.uid) + "'s directory");
  std::string name = fs::path(repository).filename().string();
  std::string base = user_dir + "/" + stages::sha256_hex(repository).substr(0, 16);

  // The rest with the user's rights: the commit's ID comes back in a memory file.
  stages::Fd answer = as_invoker(invoker, [&]() -> int {
    static const bool ready = [] {
      git_libgit2_init();
      git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
      // No configuration of the machine's or of a home directory: what is
      // checked out is the commit's alone (and $HOME is root's here).
      for (int level : {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL,
                        GIT_CONFIG_LEVEL_PROGRAMDATA})
        git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, "");
      return true;
    }();
    (void)ready;
    Repo source;
    check(git_repository_open_ext(&source.p, repository.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr),
          repository + " is not a Git repository");
    git_oid commit = resolve(source.p, rev, repository);
    std::string id = git_oid_tostr_s(&commit);
    std::string top = base + "/" + id;
    if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot make " + base + ": " + std::strerror(errno));
    if (!fs::exists(top)) {
      std::string building = top + ".new-" + std::to_string(::getpid());
      fs::remove_all(building);
      fs::create_directories(building + "/" + name);
      try {
        materialize(source.p, commit, building + "/" + name, repository + "@" + id.substr(0, 12));
      } catch (...) {
        fs::remove_all(building);
        throw;
      }
      // Another run of the same commit may have been first: then its
      // checkout is used.
      if (::rename(building.c_str(), top.c_str()) != 0) fs::remove_all(building);
    }
    int fd = ::memfd_create("ce-run-checkout", MFD_CLOEXEC);
    if (fd < 0 || ::write(fd, id.data(), id.size()) != static_cast<ssize_t>(id.size()))
      throw std::runtime_error(std::string("cannot answer: ") + std::strerror(errno));
    return fd;
  });
  char id[41] = {};
  if (::pread(answer.get(), id, 40, 0) != 40) throw std::runtime_error("the checkout gave no commit ID");
  Checkout out;
  out.commit = id;
  out.dir = base + "/" + out.commit + "/" + name;
  return out;
}

}  // namespace ce::runner::service
