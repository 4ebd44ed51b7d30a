// Root safety (docs/security.md): ce-run runs as root for a researcher who
// must not get root through it. Each case is an attack from the security
// review, made for real as uid 4242 through sudo's variables (SUDO_UID,
// SUDO_GID), and checks a canary file, the host's state or another
// computation's result: each fails on the ce-run before the fix.
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/filesystem.hpp>
#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <linux/fs.h>
#include <map>
#include <sstream>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#include "runner/container_mapping.h"
#include "runner/gfs.h"
#include "stages/host_files.h"
#include "support/computation.h"

using namespace ce::test;
namespace fs = boost::filesystem;

namespace {

constexpr unsigned researcher = 4242;
const std::vector<std::string> as_researcher = {"SUDO_UID=4242", "SUDO_GID=4242"};

void give(const fs::path& path, unsigned mode = 0) {
  sh("/", "chown -R 4242:4242 '" + path.string() + "'");
  if (mode != 0) fs::permissions(path, static_cast<fs::perms>(mode));
}

std::string listing(const fs::path& dir) {
  std::ostringstream out;
  for (fs::recursive_directory_iterator it(dir), end; it != end; ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    out << it->path().string() << " " << std::oct << st.st_mode << std::dec << " " << st.st_uid << " " << st.st_size
        << "\n";
  }
  return out.str();
}

// Files only root may read or write, whose content, modes and listing must
// not change whatever the researcher does.
struct Canary {
  TempDir dir;
  std::string secret = "canary-secret-" + std::to_string(::getpid()) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  fs::path file, tree;
  std::string before;
  Canary() {
    file = dir.path() / "secret";
    std::ofstream(file.string()) << secret << "\n";
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    tree = dir.path() / "tree";
    fs::create_directories(tree / "sub");
    for (int i = 0; i < 5; ++i) std::ofstream((tree / ("f" + std::to_string(i))).string()) << "keep\n";
    std::ofstream((tree / "sub" / "g").string()) << "keep\n";
    before = listing(dir.path()) + slurp(file.string());
  }
  bool intact() const { return listing(dir.path()) + slurp(file.string()) == before; }
};

// Every file under dir whose content holds `text`.
std::vector<std::string> holding(const fs::path& dir, const std::string& text) {
  std::vector<std::string> found;
  if (!fs::exists(dir)) return found;
  for (fs::recursive_directory_iterator it(dir), end; it != end; ++it)
    if (fs::is_regular_file(fs::symlink_status(it->path())) &&
        slurp(it->path().string()).find(text) != std::string::npos)
      found.push_back(it->path().string());
  return found;
}

// A researcher's CompEval computation (one input, one output), repository,
// GFS and data all theirs.
struct Lab {
  Computation c;
  TempDir gfs, data;
  Canary canary;
  std::string input;
  explicit Lab(const std::string& exec = "#!/bin/sh\ncat \"$1\" > \"$2\"\n",
               std::map<std::string, std::string> extra = {}, const std::string& setup = "")
      : c(setup, exec, [&] {
          extra.emplace("inputs", "data\n");
          extra.emplace("outputs", "copy\n");
          return extra;
        }()) {
    input = (data.path() / "in.txt").string();
    std::ofstream(input) << "the researcher's data\n";
    give(c.dir.path());
    give(gfs.path(), 0700);
    give(data.path());
  }
  RunResult run(std::vector<std::string> extra = {}, std::vector<std::string> inputs = {}) {
    std::vector<std::string> args = {"--gfs", gfs.str()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(c.path());
    if (inputs.empty()) inputs = {input};
    args.insert(args.end(), inputs.begin(), inputs.end());
    return run_ce_env(as_researcher, args);
  }
  // Commits docker.conf: busybox, the lab's name, then the lines `extra`.
  void conf(const std::string& extra, const std::string& name = "") {
    commit("docker.conf", "image = \"busybox:latest\"\nname = \"" + (name.empty() ? c.name : name) + "\"\n" + extra);
  }
  // Runs the call, which must compute; the path of its output.
  std::string computed() {
    auto r = run();
    REQUIRE(r.exit_code == 0);
    return GfsCall::paths(r.out).at(0);
  }
  // A commit as the researcher would make it (the test runs as root).
  void commit(const std::string& file, const std::string& content) {
    std::ofstream((c.dir.path() / file).string()) << content;
    sh(c.dir.path(), "git -c safe.directory='*' add -A && git -c safe.directory='*' -c user.name=t -c user.email=t@e "
                     "commit -q -m change");
    give(c.dir.path());
  }
};

std::vector<std::string> setuid_or_devices(const fs::path& dir) {
  std::vector<std::string> found;
  for (fs::recursive_directory_iterator it(dir), end; it != end; ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    if ((st.st_mode & (S_ISUID | S_ISGID)) && !S_ISDIR(st.st_mode)) found.push_back(it->path().string());
    if (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)) found.push_back(it->path().string());
  }
  return found;
}

}  // namespace

// --- A. files ce-run writes or reads as root on a path the user chose ---

TEST_CASE("A1 --report is written with the researcher's rights: a root file is never replaced",
          "[docker][security]") {
  Lab lab;
  auto target = lab.canary.file.string();
  auto r = lab.run({"--report", target});
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("cannot write the report " + target));
  CHECK(lab.canary.intact());
  // A failing run too (its error would quote attacker text).
  auto failing = run_ce_env(as_researcher, {"--gfs", lab.gfs.str(), "--report", target, lab.c.path(), "x", "y"});
  CHECK(failing.exit_code == 125);
  CHECK(lab.canary.intact());
  // Where the researcher may write, the report is theirs.
  auto own = (lab.data.path() / "report.json").string();
  REQUIRE(lab.run({"--report", own}).exit_code == 0);
  struct stat st {};
  REQUIRE(::stat(own.c_str(), &st) == 0);
  CHECK(st.st_uid == researcher);
}

TEST_CASE("A2 inputs are opened with the researcher's rights: root's files, links to them and /proc are refused",
          "[docker][security]") {
  Lab lab;
  auto link = (lab.data.path() / "link").string();
  fs::create_symlink(lab.canary.file, link);
  for (const auto& input : {lab.canary.file.string(), link, std::string("/proc/self/environ"),
                            std::string("/proc/1/environ"), std::string("/dev/zero")}) {
    INFO(input);
    auto r = lab.run({}, {input});
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("is not a readable regular file"));
    CHECK(r.out.find(lab.canary.secret) == std::string::npos);
  }
  CHECK(holding(lab.gfs.path(), lab.canary.secret).empty());
  CHECK_FALSE(fs::exists(lab.gfs.path() / "tinputs"));
  CHECK(lab.canary.intact());
}

TEST_CASE("A3 contract files are regular files of the repository: a symlink is refused by name, never followed",
          "[docker][security]") {
  Canary canary;
  SECTION("inputs") {
    Lab lab("#!/bin/sh\ncat \"$1\" > \"$2\"\n", {{"placeholder", ""}});
    fs::remove(lab.c.dir.path() / "inputs");
    fs::create_symlink(canary.file, lab.c.dir.path() / "inputs");
    lab.commit("placeholder", "x");
    auto r = lab.run();
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("inputs is a symbolic link"));
    CHECK(r.err.find(canary.secret) == std::string::npos);
    CHECK(r.out.find(canary.secret) == std::string::npos);
  }
  SECTION("docker.conf and docker-setup.sh") {
    for (const char* file : {"docker.conf", "docker-setup.sh"}) {
      Lab lab;
      fs::remove(lab.c.dir.path() / file);
      fs::create_symlink(canary.file, lab.c.dir.path() / file);
      lab.commit("placeholder", "x");
      auto r = lab.run();
      CHECK(r.exit_code == 125);
      CHECK_THAT(r.err, Catch::Contains(std::string(file) + " is a symbolic link"));
      CHECK(r.err.find(canary.secret) == std::string::npos);
    }
  }
  SECTION("exec") {
    Lab lab;
    fs::remove(lab.c.dir.path() / "exec");
    fs::create_symlink("/bin/sh", lab.c.dir.path() / "exec");
    lab.commit("placeholder", "x");
    auto r = lab.run();
    CHECK(r.exit_code == 126);
    CHECK_THAT(r.err, Catch::Contains("exec is a symbolic link"));
  }
  SECTION("a COMPDIR that is not the researcher's") {
    Lab lab;
    sh("/", "chown -R 0:0 '" + lab.c.path() + "'");
    auto r = lab.run();
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("belongs to uid 0, not to you"));
  }
  CHECK(canary.intact());
}

TEST_CASE("A4 a GFS must be the researcher's own, the default, or one root allows", "[docker][security]") {
  Lab lab;
  auto r = run_ce_env(as_researcher, {"--gfs", lab.canary.dir.str(), lab.c.path(), lab.input});
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("is not one you may use"));
  auto env = run_ce_env({"SUDO_UID=4242", "SUDO_GID=4242", "GFSDIR=/etc"}, {lab.c.path(), lab.input});
  CHECK(env.exit_code == 125);
  CHECK_THAT(env.err, Catch::Contains("/etc is not one you may use"));
  CHECK_FALSE(fs::exists("/etc/tinputs"));
  CHECK(lab.canary.intact());
  CHECK(lab.run().exit_code == 0);  // their own
}

TEST_CASE("A5 files ce-run writes in COMPDIR never follow a link the repository plants", "[docker][security]") {
  Lab lab;
  // Committed links under the names of the old temporary files, and the
  // mapping itself and git's exclude file as links to root's file.
  for (int pid = 1; pid < 200; ++pid)
    fs::create_symlink(lab.canary.file, lab.c.dir.path() / ("docker-container.tmp." + std::to_string(pid)));
  lab.commit("placeholder", "x");
  fs::create_symlink(lab.canary.file, lab.c.dir.path() / "docker-container");
  fs::remove(lab.c.dir.path() / ".git/info/exclude");
  fs::create_symlink(lab.canary.file, lab.c.dir.path() / ".git/info/exclude");
  give(lab.c.dir.path());
  auto r = lab.run({"--allow-dirty"});
  CHECK(r.exit_code == 0);
  CHECK(lab.canary.intact());
  CHECK(fs::is_regular_file(fs::symlink_status(lab.c.dir.path() / "docker-container")));
  struct stat st {};
  ::stat((lab.c.dir.path() / "docker-container").c_str(), &st);
  CHECK(st.st_uid == researcher);
}

// --- B. the GFS as hostile ground ---

TEST_CASE("B6 no setuid program or device made in a container reaches the host", "[docker][security]") {
  // As root in the container: an everytime step and the command both try.
  const char* plant =
      "cp /bin/busybox \"$GFSDIR/suid\" 2>/dev/null; chmod 4755 \"$GFSDIR/suid\" 2>/dev/null; "
      "mknod \"$GFSDIR/disk\" b 8 0 2>/dev/null; ";
  Lab lab(std::string("#!/bin/sh\n") + plant +
              "cp /bin/busybox \"$2\"; chmod 6755 \"$2\"; d=$(dirname \"$2\"); mknod \"$d/dev\" c 1 3; "
              "cp /bin/busybox \"$d/kept\"; chmod 4755 \"$d/kept\"\n",
          {{"docker.conf", ""}}, std::string("everytime && { ") + plant + "true; }\n");
  lab.conf("user = \"0:0\"\n");
  auto r = lab.run();
  REQUIRE(r.exit_code == 0);
  auto out = GfsCall::paths(r.out).at(0);
  struct stat st {};
  REQUIRE(::stat(out.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0444);  // filed: read-only, no setuid
  CHECK(st.st_uid == 0);
  CHECK(setuid_or_devices(lab.gfs.path()).empty());
  CHECK_FALSE(fs::exists(lab.gfs.path() / "suid"));
  // The staging area is root's alone: nothing in it is reachable by a user.
  REQUIRE(::stat("/var/lib/ce-run/staging", &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  // A failed call keeps its outputs there, still out of reach.
  Lab failing("#!/bin/sh\ncp /bin/busybox \"$2\"; chmod 4755 \"$2\"; exit 3\n", {{"docker.conf", ""}});
  failing.conf("user = \"0:0\"\n");
  auto kept = failing.run();
  CHECK(kept.exit_code == 3);
  CHECK_THAT(kept.err, Catch::Contains("/.ce-run/staging/"));
  CHECK(setuid_or_devices(failing.gfs.path()).empty());
}

TEST_CASE("B7 links and foreign directories planted in the GFS are refused, never followed", "[docker][security]") {
  Lab lab;
  SECTION("the computation's directory as a link") {
    fs::create_symlink(lab.canary.tree, lab.gfs.path() / ("c_" + lab.c.name));
    auto r = lab.run();
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("is a symbolic link"));
    auto gc = run_ce_env(as_researcher, {"gc", "--results", "--gfs", lab.gfs.str(), lab.c.path()});
    CHECK(gc.exit_code == 125);
  }
  SECTION("directories of the researcher's own with links inside") {
    auto mine = lab.gfs.path() / ("c_" + lab.c.name);
    fs::create_directories(mine);
    fs::create_symlink(lab.canary.tree, mine / "x");
    fs::create_directories(lab.gfs.path() / "tinputs");
    for (const char* h2 : {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"})
      for (const char* l : {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"})
        fs::create_symlink(lab.canary.tree, lab.gfs.path() / "tinputs" / (std::string(h2) + l));
    give(lab.gfs.path());
    auto r = lab.run();
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("is owned by uid 4242, not uid 0"));
    run_ce_env(as_researcher, {"gc", "--results", "--gfs", lab.gfs.str(), lab.c.path()});
  }
  CHECK(lab.canary.intact());
}

TEST_CASE("B8 removing a tree never follows a directory swapped for a link while it walks", "[security]") {
  Canary canary;
  TempDir work(TempDir::Storage::memory);
  // A leftover process exchanges a directory and a link to root's tree, over
  // and over, while the tree holding them is removed.
  std::atomic<bool> stop{false};
  for (int round = 0; round < 200 && canary.intact(); ++round) {
    auto top = work.path() / ("t" + std::to_string(round));
    fs::create_directories(top / "d" / "deeper");
    for (int i = 0; i < 20; ++i) std::ofstream((top / "d" / ("f" + std::to_string(i))).string()) << "x";
    fs::create_symlink(canary.tree, top / "s");
    stop = false;
    std::thread swapper([&] {
      while (!stop)
        ::syscall(SYS_renameat2, AT_FDCWD, (top / "d").c_str(), AT_FDCWD, (top / "s").c_str(), RENAME_EXCHANGE);
    });
    ce::stages::Fd dir(::open(work.path().c_str(), O_RDONLY | O_DIRECTORY));
    try {
      ce::stages::remove_tree_at(dir.get(), top.filename().string(), top.string());
    } catch (const ce::stages::HostFileError&) {
      // giving up on a tree that keeps changing is fine; following is not
    }
    stop = true;
    swapper.join();
  }
  CHECK(canary.intact());
}

TEST_CASE("B9 an output that is a link, a FIFO or a hard link is refused, not hashed or filed", "[docker][security]") {
  Lab lab("#!/bin/sh\nln -s \"$SECRET\" \"$2\"\n", {{"docker.conf", ""}});
  lab.conf("env = { SECRET = \"" + lab.canary.file.string() + "\" }\n");
  auto r = lab.run();
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("output 0 (copy)"));
  CHECK_THAT(r.err, Catch::Contains("symbolic link"));
  CHECK(holding(lab.gfs.path(), lab.canary.secret).empty());
  CHECK(holding(lab.gfs.path(), ce::runner::sha1_file(lab.canary.file.string())).empty());
  for (const char* exec : {"#!/bin/sh\nmkfifo \"$2\"\n", "#!/bin/sh\necho x > \"$2.other\"; ln \"$2.other\" \"$2\"\n"}) {
    Lab other(exec);
    auto o = other.run();
    CHECK(o.exit_code == 125);
    CHECK_THAT(o.err, Catch::Contains("output 0 (copy)"));
    auto missing = GfsCall::paths(o.out);
    REQUIRE(missing.size() == 1);
    CHECK_FALSE(fs::exists(fs::path(missing.at(0)).parent_path().parent_path() / "done"));
  }
  CHECK(lab.canary.intact());
}

TEST_CASE("B10 a filed result is root's and read-only: a later exec of the same uid cannot change it",
          "[docker][security]") {
  Lab lab;
  auto out = lab.computed();
  // Another computation of the same researcher, same uid, overwrites it
  // with the same size through the GFS mount.
  Lab attacker("#!/bin/sh\nprintf 'THE FORGED DATA!!!!!!\\n' > \"$TARGET\"; r=$?; cat \"$1\" > \"$2\"; exit 0\n",
               {{"docker.conf", ""}});
  attacker.conf("env = { TARGET = \"" + out + "\" }\n");
  // The attacker's call runs with the victim's GFS.
  auto a = run_ce_env(as_researcher, {"--gfs", lab.gfs.str(), attacker.c.path(), attacker.input});
  CHECK(a.exit_code == 0);
  CHECK(slurp(out) == "the researcher's data\n");
  auto again = lab.run({"--verify"});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains(" verified"));
}

TEST_CASE("B11 two inputs whose SHA-1s share the 12 digits of their name never get each other's result",
          "[docker][security]") {
  Lab lab;
  auto out = lab.computed();
  auto sha1 = ce::runner::sha1_file(lab.input);
  // A prefix collision, as a search of 2^24 inputs finds one: the record
  // and the stored input are made to say the other input's SHA-1.
  std::string other = sha1.substr(0, 12) + (sha1[12] == '0' ? "1" : "0") + sha1.substr(13);
  auto record = fs::path(out).parent_path().parent_path() / "done" / fs::path(out).filename();
  std::string text = slurp(record.string());
  auto at = text.find(sha1);
  REQUIRE(at != std::string::npos);
  text.replace(at, 40, other);
  fs::permissions(record, fs::perms::owner_write | fs::perms::owner_read);
  std::ofstream(record.string(), std::ios::trunc) << text;
  fs::permissions(record, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  auto r = lab.run();
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains("share the 12 digits"));
  CHECK_THAT(r.err, Catch::Contains(lab.input));
  CHECK_THAT(r.err, Catch::Contains(other));
  CHECK(r.out.find(" ok") == std::string::npos);
  auto verify = lab.run({"--verify"});
  CHECK(verify.exit_code == 1);
  CHECK(verify.out.find(" verified") == std::string::npos);
}

TEST_CASE("B11 an input stored under its name with other content is an error naming both files",
          "[docker][security]") {
  Lab lab;
  auto sha1 = ce::runner::sha1_file(lab.input);
  auto stored = lab.gfs.path() / "tinputs" / sha1.substr(0, 2) / sha1.substr(2, 10);
  fs::create_directories(stored.parent_path());
  std::ofstream(stored.string()) << "another input with the same 12 digits\n";
  fs::permissions(stored, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  auto r = lab.run();
  CHECK(r.exit_code == 125);
  CHECK_THAT(r.err, Catch::Contains(stored.string()));
  CHECK_THAT(r.err, Catch::Contains(lab.input));
  CHECK(slurp(stored.string()) == "another input with the same 12 digits\n");
}

TEST_CASE("B12 gc --results removes only results this repository computed, whatever their name",
          "[docker][security]") {
  Lab mine, theirs("#!/bin/sh\n# theirs\ncat \"$1\" > \"$2\"\n");
  // Another repository (another tree) that uses the same name.
  theirs.conf("", mine.c.name);
  auto their_run = run_ce_env(as_researcher, {"--gfs", mine.gfs.str(), theirs.c.path(), mine.input});
  REQUIRE(their_run.exit_code == 0);
  auto their_out = GfsCall::paths(their_run.out).at(0);
  // Mine: computed, then a new commit leaves its computation ID unreachable.
  auto old = mine.run();
  REQUIRE(old.exit_code == 0);
  mine.commit("exec", "#!/bin/sh\ncat \"$1\" \"$1\" > \"$2\"\n");
  auto gc = run_ce_env(as_researcher, {"gc", "--results", "--gfs", mine.gfs.str(), mine.c.path()});
  CHECK(gc.exit_code == 0);
  CHECK_FALSE(fs::exists(GfsCall::paths(old.out).at(0)));
  CHECK(fs::exists(their_out));
  CHECK_THAT(gc.out, Catch::Contains("left 1 computed from other directories"));
}

// --- C. containers that are not ours ---

TEST_CASE("C13 a forged docker-container entry never makes ce-run use, remove or snapshot a foreign container",
          "[docker][security]") {
  // The victim: another researcher's computation, made from the same base
  // image, so its container carries the same stage key.
  Lab victim;
  REQUIRE(victim.run().exit_code == 0);
  auto foreign = ce::runner::read_mapping(victim.c.path() + "/docker-container").mapping.entries.at(0).container;
  Lab lab;
  REQUIRE(lab.run().exit_code == 0);
  auto read = ce::runner::read_mapping(lab.c.path() + "/docker-container");
  REQUIRE(read.mapping.entries.size() == 1);
  auto ancestor = read.mapping.entries.at(0).commit;
  auto forge = [&](ce::runner::ContainerMapping mapping) {
    for (auto& e : mapping.entries) e.container = foreign;
    std::ofstream(lab.c.path() + "/docker-container", std::ios::trunc) << ce::runner::format_mapping(mapping);
  };
  // The ancestor's entry names the victim's container: --incremental would
  // snapshot it.
  forge(read.mapping);
  lab.commit("exec", "#!/bin/sh\ncat \"$1\" > \"$2\"; echo 2 >> \"$2\"\n");
  auto r = lab.run({"--incremental"});
  CHECK(r.exit_code == 0);
  CHECK(lab.c.client.list_images({{"ce-run.snapshot.of", ancestor}}).empty());
  CHECK_FALSE(Catch::Contains("snapshot").match(r.err));
  // The current commit's entry names it: it would be replaced (removed).
  forge(ce::runner::read_mapping(lab.c.path() + "/docker-container").mapping);
  give(lab.c.dir.path());
  auto again = run_ce_env(as_researcher, {"--gfs", lab.gfs.str(), lab.c.path(), "--", "true"});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.err, Catch::Contains("which is not this computation's container"));
  forge(ce::runner::read_mapping(lab.c.path() + "/docker-container").mapping);
  auto shell = run_ce_env(as_researcher, {"shell", lab.c.path(), "--", "true"});
  CHECK(shell.exit_code == 125);
  auto info = lab.c.client.find_container(foreign);
  REQUIRE(info);
  CHECK(info->state.running);
  CHECK(victim.run({"--verify"}).exit_code == 0);
}

TEST_CASE("C14 lock files are root's alone", "[docker][security]") {
  Lab lab;
  REQUIRE(lab.run().exit_code == 0);
  std::size_t locks = 0;
  for (fs::recursive_directory_iterator it(lab.gfs.path()), end; it != end; ++it) {
    if (it->path().parent_path().filename() != ".locks") continue;
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == 0);
    ++locks;
  }
  CHECK(locks == 1);
  struct stat st {};
  REQUIRE(::stat("/var/lib/ce-run/locks", &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  // A lock file planted as a link is refused, not truncated.
  Lab planted;
  auto out = fs::path(planted.computed());
  auto lock = out.parent_path().parent_path() / ".locks" / out.filename();
  fs::remove(lock);
  fs::create_symlink(planted.canary.file, lock);
  fs::remove(fs::path(out.parent_path().parent_path() / "done" / out.filename()));
  auto r = planted.run();
  CHECK(r.exit_code == 125);
  CHECK(planted.canary.intact());
}

// --- D. docker.conf as an attack surface ---

TEST_CASE("D15-D17 docker.conf cannot give the host's network, ce-run's variables or a crafted image",
          "[docker][security]") {
  Lab lab;
  struct Case {
    std::string conf, error;
  };
  std::vector<Case> cases = {
      {"network = \"host\"", "network"},
      {"network = \"container:" + std::string(64, 'a') + "\"", "network"},
      {"env = { GFSDIR = \"/\" }", "GFSDIR"},
      {"env = { COMPDIR = \"/\" }", "COMPDIR"},
      {"env = { CE_COMMIT = \"x\" }", "CE_COMMIT"},
      {"env = { PATH = \"/nowhere\" }", "PATH"},
  };
  for (const auto& c : cases) {
    INFO(c.conf);
    lab.conf(c.conf + "\n");
    auto r = lab.run();
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("docker.conf:3:"));
    CHECK_THAT(r.err, Catch::Contains(c.error));
    CHECK(lab.c.containers() == 0);
  }
  for (const char* image : {"../containers/abc", "busybox:latest\\r\\nX-Injected: 1"}) {
    INFO(image);
    lab.commit("docker.conf", std::string("image = \"") + image + "\"\nname = \"" + lab.c.name + "\"\n");
    auto r = lab.run();
    CHECK(r.exit_code == 125);
    CHECK_THAT(r.err, Catch::Contains("docker.conf:1:"));
    CHECK(r.err.find('\r') == std::string::npos);
  }
}

TEST_CASE("D18 a computation's container has default memory and process limits", "[docker][security]") {
  Lab lab;
  REQUIRE(lab.run().exit_code == 0);
  auto container = ce::runner::read_mapping(lab.c.path() + "/docker-container").mapping.entries.at(0).container;
  auto info = lab.c.client.find_container(container);
  REQUIRE(info);
  CHECK(info->memory_bytes == std::int64_t{8} << 30);
  CHECK(info->pids_limit == 4096);
  // The limit reaches the kernel: with pids = 20, 40 background processes
  // cannot all start.
  lab.conf("pids = 20\n");
  auto bomb = run_ce_env(as_researcher, {"--gfs", lab.gfs.str(), lab.c.path(), "--", "sh", "-c",
                                         "rm -f /tmp/n; i=0; while [ $i -lt 40 ]; do sleep 2 & echo x >> /tmp/n; "
                                         "i=$((i+1)); done; wait"});
  CHECK_THAT(bomb.err, Catch::Contains("can't fork"));
  auto started = run_ce_env(as_researcher, {"--gfs", lab.gfs.str(), lab.c.path(), "--", "sh", "-c", "wc -l < /tmp/n"});
  CHECK(started.exit_code == 0);
  CHECK(std::stoi("0" + started.out) < 20);
}

TEST_CASE("a container that mounted another directory than the one ce-run checked is removed",
          "[docker][security]") {
  // What a COMPDIR or GFS path swapped for a link between ce-run's check and
  // the engine's mount would give: the mount is not the checked directory.
  EngineFixture f;
  TempDir checked, swapped;
  fs::create_directories(swapped.path() / "home");
  auto container = f.start_busybox({{swapped.str(), "/mnt/compdir", ce::docker::Access::read_only}});
  ce::stages::Fd right(::open(swapped.str().c_str(), O_RDONLY | O_DIRECTORY));
  ce::stages::Fd wrong(::open(checked.str().c_str(), O_RDONLY | O_DIRECTORY));
  CHECK_NOTHROW(ce::runner::check_mounts(f.client, container, {{"/mnt/compdir", right.get()}}));
  CHECK_THROWS_WITH(ce::runner::check_mounts(f.client, container, {{"/mnt/compdir", wrong.get()}}),
                    Catch::Contains("the container mounted another directory than /mnt/compdir"));
  CHECK_FALSE(f.client.find_container(container));
}
