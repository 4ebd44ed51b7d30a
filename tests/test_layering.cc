// The library (runner/ outside runner/cli/, stages/, docker/) decides what
// happened and returns it; only the command line (runner/cli/) prints,
// exits and installs signal handlers. docker/supervise.cc is a program of
// its own (the supervisor in the containers), not library code.
#include <catch2/catch.hpp>

#include <boost/filesystem.hpp>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = boost::filesystem;

TEST_CASE("library files print nothing, exit nothing and install no signal handler", "[layering]") {
  const std::regex forbidden(R"((std::cout|std::cerr|\bf?printf\s*\(|\bputs\s*\(|\bexit\s*\(|\bsigaction\b|\bstd::signal\s*\(|\bspdlog::))");
  std::size_t files = 0;
  std::vector<std::string> found;
  for (const char* folder : {"runner", "stages", "docker"}) {
    for (fs::recursive_directory_iterator it(fs::path(CE_SOURCE_DIR) / folder), end; it != end; ++it) {
      const fs::path& path = it->path();
      if (path.filename() == "cli" && fs::is_directory(path)) {
        it.disable_recursion_pending();
        continue;
      }
      if (path.extension() != ".cc" && path.extension() != ".h") continue;
      if (path.filename() == "supervise.cc") continue;
      ++files;
      std::ifstream in(path.string());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        auto comment = line.find("//");
        std::string code = comment == std::string::npos ? line : line.substr(0, comment);
        if (std::regex_search(code, forbidden)) found.push_back(path.string() + ":" + std::to_string(number) + ": " + line);
      }
    }
  }
  CHECK(files > 40);
  CHECK(found == std::vector<std::string>{});
}
