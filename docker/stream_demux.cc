#include "docker/stream_demux.h"

#include <string>

#include "docker/errors.h"

namespace ce::docker {

StreamDemux::StreamDemux(Sink sink) : sink_(std::move(sink)) {}

void StreamDemux::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      // Collecting a header.
      std::size_t take = std::min(bytes.size(), sizeof header_ - header_size_);
      for (std::size_t i = 0; i < take; ++i) header_[header_size_ + i] = static_cast<std::uint8_t>(bytes[i]);
      header_size_ += take;
      bytes.remove_prefix(take);
      if (header_size_ < sizeof header_) return;
      header_size_ = 0;
      if (header_[0] > 2 || header_[1] != 0 || header_[2] != 0 || header_[3] != 0)
        throw EngineError(ErrorKind::protocol,
                          "malformed frame header in the engine's output stream (first byte " +
                              std::to_string(header_[0]) + "); was the exec started with a TTY?");
      kind_ = static_cast<StreamKind>(header_[0]);
      frame_size_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                    (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      remaining_ = frame_size_;
      continue;  // a zero-length frame yields nothing
    }
    std::size_t take = std::min<std::size_t>(bytes.size(), remaining_);
    remaining_ -= static_cast<std::uint32_t>(take);
    sink_(kind_, bytes.substr(0, take));
    bytes.remove_prefix(take);
  }
}

void StreamDemux::finish() const {
  if (header_size_ != 0)
    throw EngineError(ErrorKind::protocol,
                      "the engine's output stream ended inside a frame header (" +
                          std::to_string(header_size_) + " of 8 bytes)");
  if (remaining_ != 0)
    throw EngineError(ErrorKind::protocol,
                      "the engine's output stream ended inside a frame (" +
                          std::to_string(remaining_) + " of " + std::to_string(frame_size_) +
                          " payload bytes missing)");
}

}  // namespace ce::docker
