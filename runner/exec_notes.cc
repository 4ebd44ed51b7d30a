#include "runner/exec_notes.h"

#include <sstream>
#include <thread>

#include "stages/host_files.h"

namespace ce::runner {

using stages::host_name;

std::string exec_note(const std::string& container, const std::string& exec_id) {
  return "exec " + host_name() + " " + container + " " + exec_id + "\n";
}

bool await_leftover_exec(docker::Client& client, const std::string& note, const std::string& container,
                         std::chrono::milliseconds wait) {
  std::istringstream in(note);
  std::string word, host, noted_container, exec_id;
  if (!(in >> word >> host >> noted_container >> exec_id) || word != "exec" || host != host_name() ||
      noted_container != container)
    return false;
  auto running = [&] {
    try {
      auto state = client.exec_state(exec_id);
      // The engine's word binds the exec to our container, whatever the note says.
      return state.running && state.container_id == container;
    } catch (const docker::EngineError& e) {
      // Gone with its container, or the engine was restarted since.
      if (e.kind() == docker::ErrorKind::no_such_exec || e.kind() == docker::ErrorKind::not_found ||
          e.kind() == docker::ErrorKind::no_such_container)
        return false;
      throw;
    }
  };
  if (!running()) return false;
  for (auto deadline = std::chrono::steady_clock::now() + wait; std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!running()) break;
  }
  return true;
}

}  // namespace ce::runner
