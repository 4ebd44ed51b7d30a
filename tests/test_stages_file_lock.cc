#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <iterator>
#include <memory>
#include <sys/wait.h>
#include <unistd.h>

#include "stages/file_lock.h"
#include "support/engine_fixture.h"

using ce::stages::FileLock;
using ce::test::TempDir;

TEST_CASE("a lock's note reaches the next holder only when the holder did not release it normally", "[lock]") {
  TempDir dir;
  std::string path = dir.str() + "/locks/a.lock";
  {
    FileLock lock(path);
    CHECK(lock.previous_note().empty());
    lock.set_note("exec host 1234\n");
  }
  CHECK(FileLock(path).previous_note().empty());  // released normally: emptied

  // A holder killed with its note set: the next holder reads it.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    FileLock lock(path);
    lock.set_note("exec host abcdef\n");
    char c = 1;
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  {
    FileLock next(path);  // not blocked by the dead holder
    CHECK(next.previous_note() == "exec host abcdef\n");
    next.set_note("short\n");  // a shorter note replaces it whole
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text == "short\n");
  }
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("a lock taken without waiting is not held while another holds it", "[lock]") {
  TempDir dir;
  std::string path = dir.str() + "/b.lock";
  auto first = std::make_unique<FileLock>(path);
  // flock locks belong to the open file: a second open in this process
  // contends like another process would.
  FileLock busy(path, ce::stages::Wait::no);
  CHECK_FALSE(busy.held());
  first.reset();
  FileLock free(path, ce::stages::Wait::no);
  CHECK(free.held());
}
