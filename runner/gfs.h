// The global file storage (GFS): content-addressed inputs and outputs of
// computation calls, with a completion record per call.
//
//   GFSDIR/tinputs/H2/H10                    an input's content
//   GFSDIR/c_NAME/CID12/KK/INS               output KK of a call
//   GFSDIR/c_NAME/CID12/done/INS             the call's completion record
//   GFSDIR/c_NAME/CID12/.staging/INS.HOST.PID/   a running call's outputs
//   GFSDIR/c_NAME/CID12/.locks/INS           one call at a time (flock)
//
//   H2 H10 = the first 2 and the next 10 hex digits of the SHA-1 of the content
//   CID12  = the first 12 hex digits of the computation ID (git_identity.h)
//   KK     = the output's number, two digits, from 00
//   INS    = IN0 "_" IN1 "_" ...: each input's first 12 SHA-1 hex digits;
//            "none" for a computation without inputs
//
// A call is done only when its record exists, is of this version, names
// every output, and each output file is there with the recorded size. The
// outputs are renamed into place before the record is written, so a crash
// leaves at worst outputs without a record: not done, computed again. Only
// POSIX rename and flock are used, so the GFS may be on NFS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ce::runner {

// The contract of a CompEval computation in COMPDIR.
struct CallContract {
  std::vector<std::string> inputs;   // symbolic names, from `inputs`
  std::vector<std::string> outputs;  // from `outputs`
  std::string exec;                  // the executable's path
};

// nullopt when COMPDIR has no `outputs` (or `compeval-outputs`) file: not a
// CompEval computation, its exec just gets the arguments. Throws
// std::runtime_error for an unreadable file.
std::optional<CallContract> read_contract(const std::string& compdir);

struct InputFile {
  std::string name;  // symbolic
  std::string path;  // as given, made absolute
  std::string sha1;  // 40 hex digits
  std::string stored;  // GFSDIR/tinputs/H2/H10
};

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
  std::vector<std::pair<std::string, std::string>> inputs;  // name, sha1
  std::vector<OutputRecord> outputs;
};

std::string format_record(const CallRecord& record);
// nullopt, with the reason, for a record that is damaged or of another version.
std::optional<CallRecord> parse_record(const std::string& text, std::string* problem = nullptr);

class Call {
 public:
  // Checks arity and readability (throws with the names), hashes the inputs.
  Call(const std::string& gfs, const std::string& name, const std::string& computation_id,
       const CallContract& contract, const std::vector<std::string>& input_paths);

  const std::vector<InputFile>& inputs() const { return inputs_; }
  std::string output_path(std::size_t k) const;
  std::string record_path() const;
  std::string lock_path() const;
  std::string staging_root() const;
  std::string inputs_key() const { return ins_; }

  // Done: record fine, every output there with its size. `problem` says why not.
  std::optional<CallRecord> done(std::string* problem = nullptr) const;

  // Copies each input to tinputs/ once, atomically.
  void store_inputs() const;
  // A fresh staging directory for this process; returns its path.
  std::string make_staging() const;
  // Moves staged outputs into place, then writes the record (both atomic).
  // Throws naming a missing or unreadable output; then nothing is moved.
  void promote(const std::string& staging, CallRecord record) const;

  // Re-hashes the outputs against the record: the differences, empty if none.
  std::vector<std::string> verify() const;

 private:
  std::string gfs_, dir_, ins_;
  CallContract contract_;
  std::vector<InputFile> inputs_;
};

// The bytes still available when the file system holding `path` is full
// (no free block for users or for root), else nullopt. After a command has
// filled it, its outputs may be cut short without the command noticing.
std::optional<std::uint64_t> full_file_system(const std::string& path);

std::string sha1_file(const std::string& path);
std::string sha256_file(const std::string& path);

}  // namespace ce::runner
