// An exec attached in both directions: what the engine calls hijacking.
// POST /exec/{id}/start with "Upgrade: tcp" turns the HTTP connection into a
// raw byte stream: our bytes are the command's stdin, the engine's are its
// output (raw with a TTY, multiplexed frames without; see stream_demux.h).
#pragma once

#include <memory>
#include <string>

#include "docker/engine_address.h"

namespace ce::docker {

class AttachedExec {
 public:
  // Starts the exec attached. Throws EngineError.
  AttachedExec(const EngineAddress& address, const std::string& exec_id, bool tty);
  ~AttachedExec();
  AttachedExec(const AttachedExec&) = delete;
  AttachedExec& operator=(const AttachedExec&) = delete;

  int fd() const;  // to poll
  // Output bytes the engine sent; 0 at the end. Bytes read with the response
  // headers come first.
  long read(char* buffer, std::size_t size);
  // Input for the command; false if the engine has gone.
  bool write(const char* data, std::size_t size);
  // No more input: the command sees end of file.
  void close_input();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ce::docker
