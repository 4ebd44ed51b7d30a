#include "docker/command_server.h"

#include <condition_variable>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>

#include "docker/attach.h"
#include "docker/errors.h"
#include "docker/serve_frames.h"
#include "docker/stream_demux.h"

namespace ce::docker {

using serve::get32;
using serve::put32;

struct CommandServer::Impl {
  std::string container, exec_id;
  std::unique_ptr<AttachedExec> attached;
  std::thread reader;
  std::mutex mutex;  // the maps, `gone`, writes to the server
  std::condition_variable ended;
  struct Pending {
    const OutputSink* sink;
    bool done = false;
    int status = 0;
  };
  std::map<std::uint32_t, Pending*> pending;
  std::uint32_t next_id = 1;
  bool gone = false;
  std::string server_errors;

  bool send(const std::string& payload) {
    std::string frame;
    put32(frame, static_cast<std::uint32_t>(payload.size()));
    frame += payload;
    return attached->write(frame.data(), frame.size());
  }

  // The server's answers, frame by frame, to the commands they name.
  void read_all() {
    std::string input;
    StreamDemux demux([&](StreamKind kind, std::string_view bytes) {
      if (kind == StreamKind::stderr_stream) {
        std::lock_guard<std::mutex> lock(mutex);
        if (server_errors.size() < 4096) server_errors.append(bytes);
        return;
      }
      input.append(bytes);
      while (input.size() >= 4 && input.size() >= 4 + get32(input, 0)) {
        std::uint32_t length = get32(input, 0);
        if (length >= 5) {
          char kind_byte = input[4];
          std::uint32_t id = get32(input, 5);
          std::string_view body(input.data() + 9, length - 5);
          std::unique_lock<std::mutex> lock(mutex);
          auto it = pending.find(id);
          if (it != pending.end()) {
            if (kind_byte == serve::ended && body.size() >= 4) {
              it->second->status = static_cast<int>(get32(std::string(body), 0));
              it->second->done = true;
              pending.erase(it);
              ended.notify_all();
            } else if (kind_byte == serve::out || kind_byte == serve::err) {
              const OutputSink* sink = it->second->sink;
              lock.unlock();  // the sink may take its time; the command waits for X
              (*sink)(kind_byte == serve::out ? StreamKind::stdout_stream : StreamKind::stderr_stream, body);
            }
          }
        }
        input.erase(0, 4 + length);
      }
    });
    char buffer[65536];
    try {
      for (long n; (n = attached->read(buffer, sizeof buffer)) > 0;)
        demux.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    } catch (const std::exception&) {
    }
    std::lock_guard<std::mutex> lock(mutex);
    gone = true;
    ended.notify_all();
  }
};

CommandServer::CommandServer(Client& client, const std::string& container, const ExecSpec& spec,
                             const std::string& supervisor)
    : impl_(std::make_unique<Impl>()) {
  ExecSpec served = spec;
  served.cmd = {supervisor, "--serve"};
  served.attach_stdin = true;
  served.tty = false;
  impl_->container = container;
  impl_->exec_id = client.create_exec(container, served);
  impl_->attached = std::make_unique<AttachedExec>(client.address(), impl_->exec_id, false);
  impl_->reader = std::thread([impl = impl_.get()] { impl->read_all(); });
}

CommandServer::~CommandServer() {
  // The end of its input stops every command still running; the server
  // then exits and the engine closes the stream.
  impl_->attached->close_input();
  if (impl_->reader.joinable()) impl_->reader.join();
}

bool CommandServer::alive() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return !impl_->gone;
}
const std::string& CommandServer::exec_id() const { return impl_->exec_id; }
const std::string& CommandServer::container() const { return impl_->container; }

int CommandServer::run(const std::vector<std::string>& argv, const OutputSink& sink, Cancellation* cancel) {
  Impl::Pending me{&sink};
  std::uint32_t id;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->gone)
      throw EngineError(ErrorKind::unreachable, "the command server in container " + impl_->container + " is gone");
    id = impl_->next_id++;
    impl_->pending[id] = &me;
    std::string request(1, serve::run);
    put32(request, id);
    put32(request, static_cast<std::uint32_t>(argv.size()));
    for (const auto& a : argv) {
      put32(request, static_cast<std::uint32_t>(a.size()));
      request += a;
    }
    if (!impl_->send(request)) impl_->gone = true;
  }
  std::optional<Cancellation::Registration> stop;
  if (cancel)
    stop.emplace(cancel->on_cancel([this, id] {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      std::string kill(1, serve::kill);
      put32(kill, id);
      if (!impl_->gone) impl_->send(kill);
    }));
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->ended.wait(lock, [&] { return me.done || impl_->gone; });
  if (!me.done) {
    impl_->pending.erase(id);
    lock.unlock();
    stop.reset();
    throw EngineError(ErrorKind::unreachable, "the command server in container " + impl_->container +
                                                  " went away while the command ran");
  }
  lock.unlock();
  stop.reset();
  return me.status;
}

}  // namespace ce::docker
