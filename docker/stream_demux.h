// Demultiplexer for the engine's attach/exec stream (Tty=false).
//
// The stream is a sequence of frames:
//   frame  = header payload
//   header = kind(1 byte: 0 stdin, 1 stdout, 2 stderr) 0x00 0x00 0x00
//            length(4 bytes, big-endian)
//   payload = length bytes
// Bytes arrive in arbitrary pieces: a frame may be split across reads and a
// read may hold several frames. Payload is handed on as soon as it arrives,
// part of a frame included, so a slow command's output is seen live.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace ce::docker {

enum class StreamKind : std::uint8_t { stdin_stream = 0, stdout_stream = 1, stderr_stream = 2 };

class StreamDemux {
 public:
  using Sink = std::function<void(StreamKind, std::string_view)>;

  explicit StreamDemux(Sink sink);

  // Consumes the next bytes of the stream. Throws EngineError(protocol) on a
  // header that is not a frame header.
  void feed(std::string_view bytes);

  // The stream has ended: throws EngineError(protocol) if it ended inside a
  // frame, naming how much was missing.
  void finish() const;

 private:
  Sink sink_;
  std::uint8_t header_[8] = {};
  std::size_t header_size_ = 0;   // header bytes collected so far
  std::uint32_t frame_size_ = 0;  // payload size of the current frame
  std::uint32_t remaining_ = 0;   // payload bytes of the current frame still due
  StreamKind kind_ = StreamKind::stdout_stream;
};

}  // namespace ce::docker
