#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "docker/errors.h"
#include "docker/stream_demux.h"

using ce::docker::EngineError;
using ce::docker::StreamDemux;
using ce::docker::StreamKind;

namespace {

std::string frame(StreamKind kind, const std::string& payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(kind);
  auto n = static_cast<std::uint32_t>(payload.size());
  out[4] = static_cast<char>(n >> 24);
  out[5] = static_cast<char>(n >> 16);
  out[6] = static_cast<char>(n >> 8);
  out[7] = static_cast<char>(n);
  return out + payload;
}

// Collects what the demultiplexer hands on, merging consecutive pieces of
// the same stream so that tests compare content, not piece boundaries.
struct Collected {
  std::vector<std::pair<StreamKind, std::string>> pieces;
  int calls = 0;
  StreamDemux::Sink sink() {
    return [this](StreamKind kind, std::string_view bytes) {
      ++calls;
      if (!pieces.empty() && pieces.back().first == kind)
        pieces.back().second.append(bytes);
      else
        pieces.emplace_back(kind, std::string(bytes));
    };
  }
};

const StreamKind out = StreamKind::stdout_stream;
const StreamKind err = StreamKind::stderr_stream;

}  // namespace

TEST_CASE("a frame split into single bytes is reassembled", "[demux]") {
  std::string stream = frame(out, "hello world\n");
  Collected got;
  StreamDemux demux(got.sink());
  for (char c : stream) demux.feed(std::string_view(&c, 1));
  demux.finish();
  REQUIRE(got.pieces.size() == 1);
  CHECK(got.pieces[0].first == out);
  CHECK(got.pieces[0].second == "hello world\n");
}

TEST_CASE("payload is handed on before its frame is complete", "[demux]") {
  std::string stream = frame(out, "abcdef");
  Collected got;
  StreamDemux demux(got.sink());
  demux.feed(std::string_view(stream).substr(0, 10));  // header + "ab"
  REQUIRE(got.pieces.size() == 1);
  CHECK(got.pieces[0].second == "ab");
  demux.feed(std::string_view(stream).substr(10));
  demux.finish();
  CHECK(got.pieces[0].second == "abcdef");
}

TEST_CASE("several frames in one read come out in order", "[demux]") {
  std::string stream = frame(out, "one ") + frame(out, "two ") + frame(err, "oops") + frame(out, "three");
  Collected got;
  StreamDemux demux(got.sink());
  demux.feed(stream);
  demux.finish();
  REQUIRE(got.pieces.size() == 3);
  CHECK(got.pieces[0] == std::make_pair(out, std::string("one two ")));
  CHECK(got.pieces[1] == std::make_pair(err, std::string("oops")));
  CHECK(got.pieces[2] == std::make_pair(out, std::string("three")));
}

TEST_CASE("zero-length frames yield nothing and do not desynchronise", "[demux]") {
  std::string stream = frame(out, "") + frame(err, "e") + frame(out, "") + frame(out, "o");
  Collected got;
  StreamDemux demux(got.sink());
  demux.feed(stream);
  demux.finish();
  CHECK(got.calls == 2);
  REQUIRE(got.pieces.size() == 2);
  CHECK(got.pieces[0] == std::make_pair(err, std::string("e")));
  CHECK(got.pieces[1] == std::make_pair(out, std::string("o")));
}

TEST_CASE("interleaved stdout and stderr keep their streams at every split point", "[demux]") {
  std::string stream;
  std::string want_out, want_err;
  for (int i = 0; i < 20; ++i) {
    std::string a = "out" + std::to_string(i) + "\n", b = "err" + std::to_string(i) + "\n";
    stream += frame(out, a) + frame(err, b);
    want_out += a;
    want_err += b;
  }
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    std::string got_out, got_err;
    StreamDemux demux([&](StreamKind kind, std::string_view bytes) {
      (kind == out ? got_out : got_err).append(bytes);
    });
    demux.feed(std::string_view(stream).substr(0, split));
    demux.feed(std::string_view(stream).substr(split));
    demux.finish();
    REQUIRE(got_out == want_out);
    REQUIRE(got_err == want_err);
  }
}

TEST_CASE("a stream that ends inside a frame's payload is an error", "[demux]") {
  std::string stream = frame(out, "complete") + frame(err, "cut short");
  stream.resize(stream.size() - 5);
  Collected got;
  StreamDemux demux(got.sink());
  demux.feed(stream);
  CHECK(got.pieces.back().second == "cut ");
  REQUIRE_THROWS_WITH(demux.finish(),
                      "the engine's output stream ended inside a frame (5 of 9 payload bytes missing)");
}

TEST_CASE("a stream that ends inside a frame header is an error", "[demux]") {
  std::string stream = frame(out, "x") + frame(out, "y").substr(0, 3);
  StreamDemux demux([](StreamKind, std::string_view) {});
  demux.feed(stream);
  REQUIRE_THROWS_WITH(demux.finish(), "the engine's output stream ended inside a frame header (3 of 8 bytes)");
}

TEST_CASE("a byte stream that is not framed is refused", "[demux]") {
  StreamDemux demux([](StreamKind, std::string_view) {});
  REQUIRE_THROWS_AS(demux.feed("hello, raw tty output"), EngineError);
}

TEST_CASE("a large frame passes through intact", "[demux]") {
  std::string payload(1 << 20, 'x');
  for (std::size_t i = 0; i < payload.size(); i += 97) payload[i] = static_cast<char>('a' + i % 26);
  std::string stream = frame(err, payload);
  std::string got;
  StreamDemux demux([&](StreamKind kind, std::string_view bytes) {
    REQUIRE(kind == err);
    got.append(bytes);
  });
  for (std::size_t at = 0; at < stream.size(); at += 16384)
    demux.feed(std::string_view(stream).substr(at, 16384));
  demux.finish();
  CHECK(got == payload);
}
