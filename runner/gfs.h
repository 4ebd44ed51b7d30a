// The global file storage (GFS): content-addressed inputs and outputs of
// computation calls, with a completion record per call.
//
//   GFSDIR/tinputs/H2/H10                    an input's content
//   GFSDIR/c_NAME/CID12/KK/INS               output KK of a call
//   GFSDIR/c_NAME/CID12/done/INS             the call's completion record
//   GFSDIR/c_NAME/CID12/.locks/INS           one call at a time (flock)
//
//   NAME   = the computation's name (compdir.h)
//   H2 H10 = the first 2 and the next 10 hex digits of the SHA-1 of the content
//   CID12  = the first 12 hex digits of the computation ID (git_identity.h)
//   KK     = the output's number, two digits, from 00
//   INS    = IN0 "_" IN1 "_" ...: each input's first 12 SHA-1 hex digits;
//            "none" for a computation without inputs; when that is longer
//            than 240 characters (more than 18 inputs), "sha256-" and the
//            first 40 hex digits of its SHA-256
//
// Only ce-run writes in the GFS, as root (docs/security.md): containers see
// it read-only, and a command writes its outputs into a staging directory
// outside it (Staging), from which ce-run copies checked regular files.
// Every directory below GFSDIR is ce-run's (owned by it, never a symlink);
// everything is reached through directory descriptors.
//
// A call is done only when its record exists, is of this version, names
// every output and this call's inputs by their full SHA-1, and each output
// file is there, ce-run's and read-only, with the recorded size. The
// outputs are renamed into place before the record is written, so a crash
// leaves at worst outputs without a record: not done, computed again. Only
// POSIX rename and flock are used, so the GFS may be on NFS.
//
// gfs.cc alone spells these paths: the rest of ce-run reaches the layout
// through Call, StagedCall, output_number and collect_results.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runner/invoker.h"
#include "stages/host_files.h"

namespace ce::runner {

// The contract of a CompEval computation in COMPDIR.
struct CallContract {
  std::vector<std::string> inputs;   // symbolic names, from `inputs`
  std::vector<std::string> outputs;  // from `outputs`
  std::string exec;                  // the executable's path
};

// "expected 2 inputs (a, b), got 1": when a call, or a task, is given
// another number of inputs than it names.
std::string arity_message(const std::vector<std::string>& names, std::size_t given);

// nullopt when COMPDIR has no `outputs` (or `compeval-outputs`) file: not a
// CompEval computation, its exec just gets the arguments. The files are
// read from the directory `compdir` (a descriptor) without following a
// symlink: each must be a regular file of the repository. Throws
// std::runtime_error naming the file as `shown` + its name.
std::optional<CallContract> read_contract(int compdir, const std::string& compdir_path, const std::string& shown);

// The global file storage, opened and checked: the directory descriptor
// every path below it is reached from.
class Gfs {
 public:
  // `path` is canonical. Directories below it must be owned by this
  // process's user (root).
  explicit Gfs(const std::string& path);
  const std::string& path() const { return path_; }
  int fd() const { return fd_->get(); }
  // Refuses (throws) a GFS the invoker may not use: under sudo, one of the
  // invoker's own directories, the default, or one of `allowed` (root's
  // host configuration); a root invoker may use any.
  void check_allowed(const Invoker& invoker, const std::string& default_path,
                     const std::vector<std::string>& allowed) const;
  // Opens (or makes, 0755) a directory below the GFS; an empty Fd when
  // missing and create is no. What is written is always walked to afresh.
  stages::Fd dir(const std::string& relative, stages::Create create) const;
  // A directory below the GFS as looked up to read (null when missing):
  // remembered, its descriptor kept and shared, so the many calls of a task
  // that share one Gfs walk to it once.
  std::shared_ptr<const stages::Fd> find(const std::string& relative) const;
  // The SHA-1 of a filed file (relative path) this Gfs hashed before,
  // when its status is still `st`'s; remember_sha1 records one.
  std::optional<std::string> known_sha1(const std::string& relative, const struct stat& st) const;
  void remember_sha1(const std::string& relative, const struct stat& st, const std::string& sha1) const;

 private:
  std::string path_;
  std::shared_ptr<stages::Fd> fd_;
  struct Found;
  std::shared_ptr<Found> found_;
};

// Where commands write their outputs: /var/lib/ce-run/staging (0700, root's
// alone), one directory per commit's container (bind-mounted read-write at
// /.ce-run/staging in it), one directory per running call. Nobody but root
// on the host reaches what a container left there.
inline constexpr const char* staging_in_container = "/.ce-run/staging";

class StagedCall {
 public:
  StagedCall() = default;
  // A fresh directory for one call in `container_dir`, writable by `user`
  // ("UID:GID"; else by anybody in the container), locked (flock) by this
  // process until it is destroyed.
  StagedCall(const std::string& root, const std::string& container_key, const std::string& name,
             const std::string& user);
  ~StagedCall();
  // The staging directory `name` in `container_dir` that a process now gone
  // made (a fleet call's job still fills it): locked by this process, or
  // nothing when it is missing, not a plain directory, or still held.
  static std::optional<StagedCall> adopt(const std::string& root, const std::string& container_key,
                                         const std::string& name);
  StagedCall(StagedCall&&) = default;
  StagedCall& operator=(StagedCall&&) = default;
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  std::string host_path() const;
  std::string container_path() const { return std::string(staging_in_container) + "/" + name_; }
  // Removes the directory and what the command left in it.
  void remove();

 private:
  std::string root_, key_, name_;
  stages::Fd container_dir_, fd_;
};

// The staging directory of a commit's container, made when missing: its
// host path. `key` names it (hex).
std::string container_staging_dir(const std::string& root, const std::string& key);

// Removes call directories no process holds and `in_use` does not name,
// and whole container directories whose key `live` does not hold. Returns
// what it removed (or would, with dry_run).
std::vector<std::string> collect_staging(const std::string& root, const std::vector<std::string>& live,
                                         bool dry_run, const std::vector<std::string>& in_use = {});

struct InputFile {
  std::string name;  // symbolic
  std::string path;  // as given, made absolute
  std::string sha1;  // 40 hex digits
  std::string stored;  // GFSDIR/tinputs/H2/H10, or the GFS output it is
  std::shared_ptr<stages::Fd> fd;  // opened with the invoker's rights (null for a filed file hashed before)
  bool in_gfs = false;  // an output filed in this GFS: used where it is, never copied
};

// Opens and hashes an input (`which` names it in errors): a file ce-run
// filed in this GFS (GFSDIR/c_NAME/..., GFSDIR/tinputs/...) through the
// GFS's descriptors, as its own, used where it is; anything else with the invoker's rights, a regular
// file on a disk (not a device, a FIFO or a file of /proc).
InputFile open_input(const Gfs& gfs, const std::string& name, const std::string& path, const Invoker& invoker,
                     const std::string& which);
// Whether the input's copy is in tinputs/ (or it is a GFS output).
bool input_stored(const Gfs& gfs, const InputFile& input);
// Copies the input to tinputs/ once, atomically; one already there is
// compared in full (NameCollision when it differs).
void store_input(const Gfs& gfs, const InputFile& input, const std::string& which);

struct OutputRecord {
  std::string name;
  std::string sha256;
  std::int64_t size = 0;
};

struct CallRecord {
  int exit_code = 0;
  std::string start, end;
  double seconds = 0;
  std::string computation_id, commit, tree;
  bool dirty = false;
  std::string base_image_id, final_key, host;
  std::string compdir;  // the computation's directory, whose gc may remove this result
  std::vector<std::pair<std::string, std::string>> inputs;  // name, sha1
  std::vector<OutputRecord> outputs;
};

std::string format_record(const CallRecord& record);
// nullopt, with the reason, for a record that is damaged or of another version.
std::optional<CallRecord> parse_record(const std::string& text, std::string* problem = nullptr);

enum class LogStream { out, err };

// The command's standard output and error as it runs, into temporary files
// beside the call's record; keep() puts them in place of the call's
// previous logs (atomically), else they are removed. Each is cut at
// `limit` bytes with a line saying so.
class CallLog {
 public:
  explicit CallLog(const class Call& call, std::size_t limit = std::size_t{64} << 20);
  ~CallLog();
  CallLog(const CallLog&) = delete;
  CallLog& operator=(const CallLog&) = delete;
  void append(LogStream stream, std::string_view bytes);
  void keep();

 private:
  struct File {
    stages::TempFile temp;
    std::size_t size = 0;
    bool cut = false;
  };
  stages::Fd dir_;
  std::string ins_, shown_;
  std::size_t limit_;
  File files_[2];
};

// The result of another call under this call's name: inputs whose SHA-1s
// share the 12 digits of the name. Never a result of this call.
class NameCollision : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Call {
 public:
  // Checks arity, opens each input with the invoker's rights (it must be a
  // regular file on a disk: not a device, a FIFO or a file of /proc), and
  // hashes it. Throws naming the input.
  Call(const Gfs& gfs, const std::string& name, const std::string& computation_id, const CallContract& contract,
       const std::vector<std::string>& input_paths, const Invoker& invoker);

  const std::vector<InputFile>& inputs() const { return inputs_; }
  std::string output_path(std::size_t k) const;
  std::string record_path() const;
  std::string inputs_key() const { return ins_; }
  // The call's lock directory (made when missing); the lock is named
  // inputs_key() in it, and shown as lock_path().
  stages::Fd lock_dir() const;
  std::string lock_path() const;
  // The name of this process's staging directory for the call (StagedCall).
  std::string staging_name() const;
  // Whether `name` (a staging directory's) is one of this call's.
  bool is_staging_name(const std::string& name) const;

  // Done: record fine, every output there with its size. `problem` says why
  // not. Throws NameCollision when the record is of other inputs.
  std::optional<CallRecord> done(std::string* problem = nullptr) const;

  // Copies each input to tinputs/ once, atomically; an input already there
  // is compared in full.
  void store_inputs() const;
  // Copies the staged outputs (regular files with one link, never followed)
  // into place, read-only, then writes the record (both atomic) and
  // returns it. Throws naming a missing or refused output; then nothing is
  // filed.
  CallRecord promote(const StagedCall& staging, CallRecord record) const;

  // What the latest run of the call's command wrote, kept beside its
  // record (CallLog): the path, and the last `limit` bytes (nullopt when
  // there is none).
  std::string log_path(LogStream stream) const;
  bool has_log() const;  // whether a run of the call left its logs

  // Re-hashes the outputs against the record: the differences, empty if none.
  std::vector<std::string> verify() const;
  // Renames a corrupt record aside so that the call counts as not done;
  // returns its new path, empty when there was none.
  std::string withdraw_record() const;
  // The call's directory relative to the GFS: c_NAME/CID12.
  std::string relative_dir() const;

 private:
  friend class CallLog;
  stages::Fd call_dir(stages::Create create) const;

  const Gfs* gfs_;
  std::string name_, cid_, ins_;
  CallContract contract_;
  std::vector<InputFile> inputs_;
};

// The last `limit` bytes of a file ce-run filed in the GFS (`path` is
// below it: an output or a log), read through the GFS's descriptors;
// nullopt when it is not there.
std::optional<std::string> read_gfs_file(const Gfs& gfs, const std::string& path,
                                         std::size_t limit = std::size_t{1} << 20);

// The path output k of a call would have when some of its inputs are not
// known yet: each input's 12 digits of `input_sha1s`, "???" for one that
// is nullopt (ce-run -n, as CompEval showed it).
std::string output_path_of(const Gfs& gfs, const std::string& name, const std::string& computation_id,
                           std::size_t k, const std::vector<std::optional<std::string>>& input_sha1s);

// An output's number KK in the layout: "00", "01", ...
std::string output_number(std::size_t k);

// What collect_results removed, or would remove with dry_run.
struct CollectedResults {
  struct Computation {
    std::string cid12;      // c_NAME/CID12
    std::size_t calls = 0;  // the records of the given COMPDIR and host in it
  };
  std::vector<Computation> removed;  // in the order of the directory's listing
  // Computation IDs not kept that hold only records of other directories or
  // hosts (or records that cannot be read): left alone.
  std::size_t left_to_others = 0;
};

// Removes results of the computation `name` under each computation ID not
// in `keep_cid12`, but only calls whose record names `compdir` and `host`
// (another repository, or machine sharing the GFS, may use the same name):
// each output and then the record. c_NAME/CID12 goes as a whole when no
// other record is left in it. With dry_run nothing is removed. nullopt
// when the GFS holds no c_NAME at all.
std::optional<CollectedResults> collect_results(const Gfs& gfs, const std::string& name,
                                                const std::set<std::string>& keep_cid12, const std::string& compdir,
                                                const std::string& host, bool dry_run);

// The bytes still available when the file system holding `path` is full
// (no free block for users or for root), else nullopt. After a command has
// filled it, its outputs may be cut short without the command noticing.
std::optional<std::uint64_t> full_file_system(const std::string& path);

std::string sha1_file(const std::string& path);
std::string sha1_fd(int fd, const std::string& shown);
std::string sha256_fd(int fd, const std::string& shown);

}  // namespace ce::runner
