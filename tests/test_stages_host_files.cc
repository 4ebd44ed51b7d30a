// The host file helpers (stages/host_files.h) that need no engine: the one
// atomic writer, the machine's name and the time in records.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "stages/host_files.h"
#include "support/engine_fixture.h"

using ce::test::TempDir;
namespace fs = boost::filesystem;
namespace stages = ce::stages;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path.string(), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::size_t entries(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("write_atomically replaces a file with the exact mode and leaves no temporary file", "[unit][host_files]") {
  TempDir dir;
  fs::path file = dir.path() / "record";
  mode_t old_mask = ::umask(077);
  stages::write_atomically(file.string(), "first\n", 0644);
  stages::write_atomically(file.string(), "second\n", 0444);
  ::umask(old_mask);
  CHECK(read_file(file) == "second\n");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0444);
  CHECK(entries(dir.path()) == 1);
}

TEST_CASE("write_atomically_at replaces a symlink at the name instead of writing through it", "[unit][host_files]") {
  TempDir dir;
  fs::path target = dir.path() / "target", link = dir.path() / "docker-container";
  std::ofstream(target.string()) << "untouched\n";
  fs::create_symlink(target, link);
  stages::Fd fd = stages::open_directory(dir.str());
  stages::write_atomically_at(fd.get(), "docker-container", "written\n", 0644, dir.str());
  CHECK(read_file(target) == "untouched\n");
  CHECK_FALSE(fs::is_symlink(link));
  CHECK(read_file(link) == "written\n");
  CHECK(entries(dir.path()) == 2);
}

TEST_CASE("the atomic writer's errors name the file, and a failed write leaves nothing behind", "[unit][host_files]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(stages::write_atomically(dir.str() + "/missing/file", "x", 0644),
                      "cannot write " + dir.str() + "/missing/file: No such file or directory");
  fs::create_directories(dir.path() / "taken" / "inside");
  stages::Fd fd = stages::open_directory(dir.str());
  REQUIRE_THROWS_WITH(stages::write_atomically_at(fd.get(), "taken", "x", 0644, dir.str()),
                      "cannot replace " + dir.str() + "/taken: Is a directory");
  CHECK(entries(dir.path()) == 1);  // the temporary file was removed
  CHECK(fs::is_directory(dir.path() / "taken" / "inside"));
}

TEST_CASE("host_name is the machine's name and utc_now the time in UTC to the second", "[unit][host_files]") {
  struct utsname names {};
  REQUIRE(::uname(&names) == 0);
  CHECK(stages::host_name() == names.nodename);

  // In a zone five hours west of UTC, so that local time would show.
  const char* zone = std::getenv("TZ");
  std::string old_zone = zone ? zone : "";
  ::setenv("TZ", "XYZ+5", 1);
  ::tzset();
  std::time_t before = std::time(nullptr);
  std::string now = stages::utc_now();
  std::time_t after = std::time(nullptr);
  if (zone)
    ::setenv("TZ", old_zone.c_str(), 1);
  else
    ::unsetenv("TZ");
  ::tzset();
  REQUIRE(std::regex_match(now, std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")));
  std::tm parsed {};
  REQUIRE(::strptime(now.c_str(), "%Y-%m-%dT%H:%M:%SZ", &parsed) != nullptr);
  std::time_t back = ::timegm(&parsed);  // read as UTC: a local time would be off by the zone
  CHECK(back >= before);
  CHECK(back <= after);
}
