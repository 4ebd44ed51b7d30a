// The host file helpers (stages/host_files.h) that need no engine: the
// machine's name and the time in records.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <regex>
#include <sys/utsname.h>
#include <unistd.h>

#include "stages/host_files.h"

namespace stages = ce::stages;

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
