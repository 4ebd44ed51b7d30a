// Notes a lock holder leaves for the next one about the exec it runs, so
// that a holder killed mid-step does not leave its exec writing beside the
// next one's (stages::FileLock::set_note).
#pragma once

#include <chrono>
#include <string>

#include "docker/client.h"

namespace ce::runner {

// A lock holder's note naming the exec it runs, bound to the container it
// runs in ("exec HOST CONTAINER EXEC-ID"), for stages::FileLock::set_note.
std::string exec_note(const std::string& container, const std::string& exec_id);

// Waits for the exec that a previous lock holder noted to end, when it is
// this host's and runs in `container` (the caller's own: a note naming any
// other container, forged or stale, is ignored). Its holder was killed, so
// its supervisor is stopping it; `wait` bounds the wait. Returns whether
// such an exec was running.
bool await_leftover_exec(docker::Client& client, const std::string& note, const std::string& container,
                         std::chrono::milliseconds wait = std::chrono::seconds(15));

}  // namespace ce::runner
