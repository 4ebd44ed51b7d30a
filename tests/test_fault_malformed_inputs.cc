// Generated malformed docker.conf and docker-setup.sh files: every one must
// be answered by an error that names the file, line and column, never a
// crash or a hang.
#include <catch2/catch.hpp>

#include <random>
#include <regex>

#include "runner/docker_conf.h"
#include "stages/setup_script.h"

using ce::runner::ConfigError;
using ce::runner::parse_docker_conf;
using ce::stages::parse_setup_script;
using ce::stages::ScriptError;

namespace {

const std::regex located("^(docker\\.conf|docker-setup\\.sh):[0-9]+:[0-9]+: .+");

std::vector<std::string> malformed_confs() {
  std::vector<std::string> out;
  const std::string good = "image = \"debian:bookworm\"\nname = \"seg\"\ncpus = 2\n[env]\nA = \"1\"\n";
  // Cut inside each quoted string, and after each '=' (a key without value).
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string cut = good.substr(0, i);
    if (std::count(cut.begin(), cut.end(), '"') % 2 == 1 || (!cut.empty() && cut.back() == '=')) out.push_back(cut);
  }
  std::mt19937 random(42);
  for (int i = 0; i < 40; ++i) {  // binary garbage
    std::string garbage(1 + random() % 200, '\0');
    for (auto& c : garbage) c = static_cast<char>(random() % 256);
    out.push_back("image = \"x\"\n" + garbage + "\x01\n");
  }
  for (const char* unbalanced : {"image = \"x", "image = 'x", "image = \"\"\"x", "image = [\"x\"", "[env\nA=\"1\"",
                                 "image = \"x\"\n[[", "image = {", "name = \"a\"\"b\"\nimage=\"x\""})
    out.push_back(unbalanced);
  out.push_back("image = \"" + std::string(1 << 20, 'x'));  // a huge unterminated line
  out.push_back("image = \"x\"\n" + std::string(1 << 16, '[') + "\n");
  for (const char* bad_utf8 : {"image = \"x\"\nna\xffme = \"y\"\n", "image = \"\xc3\"\n", "\xef\xbb\xbfimage = 1\n",
                               "image = \"x\"\n\xe2\x82 = 1\n", "image\xc0\xaf = \"x\"\n"})
    out.push_back(bad_utf8);
  for (const char* wrong : {"image = 1", "image = \"x\"\ncpus = \"many\"", "image = \"x\"\nmemory = \"lots\"",
                            "image = \"x\"\nbogus = 1", "image = \"x\"\nenv = 3", "cpus = 1"})
    out.push_back(wrong);
  return out;
}

std::vector<std::string> malformed_scripts() {
  std::vector<std::string> out;
  const std::string good =
      "set -e\nnext_stage && {\n  if [ -e /x ]; then\n    echo \"$(cat /x)\"\n  fi\n}\n"
      "everytime && case $A in a) echo 'a';; esac\nnext_stage && for i in 1 2; do echo $i; done\n";
  // Every cut that leaves a quote, a brace, a keyword or a $( open.
  for (std::size_t i = 1; i < good.size(); ++i) {
    std::string cut = good.substr(0, i);
    try {
      parse_setup_script(cut, "docker-setup.sh");
    } catch (const ScriptError&) {
      out.push_back(cut);
    }
  }
  for (const char* unbalanced : {"next_stage && echo 'x\n", "next_stage && echo \"x\n", "next_stage && echo $(x\n",
                                 "next_stage && echo `x\n", "next_stage && { echo\n", "everytime && ( echo\n",
                                 "next_stage && if true; then\n", "next_stage && echo ${x\n", "fi\n", "done\n",
                                 "next_stage\n", "everytime || x\n", "a && next_stage && b\n", "next_stage && x &\n"})
    out.push_back(unbalanced);
  std::mt19937 random(7);
  for (int i = 0; i < 40; ++i) {  // garbage, then a quote that never closes
    std::string garbage(1 + random() % 300, '\0');
    for (auto& c : garbage) {
      c = static_cast<char>(random() % 256);
      // Nothing that could close the quote below or hide it.
      if (std::string_view("'\"\\#\n$`;&|()<>{}").find(c) != std::string_view::npos) c = 'x';
    }
    out.push_back("next_stage && echo " + garbage + " '\n");
  }
  out.push_back("next_stage && echo \"" + std::string(1 << 20, 'x') + "\n");  // a huge line
  out.push_back("next_stage && echo \xff\xfe \"\xc3\n");                      // invalid UTF-8, open quote
  out.push_back(std::string(100000, '(') + "\n");
  return out;
}

}  // namespace

TEST_CASE("malformed docker.conf files are answered by located errors", "[fault][malformed]") {
  auto inputs = malformed_confs();
  INFO("generated docker.conf files: " << inputs.size());
  CHECK(inputs.size() >= 60);
  std::size_t answered = 0;
  for (const auto& text : inputs) {
    try {
      parse_docker_conf(text, "docker.conf");
      FAIL_CHECK("accepted: " << text.substr(0, 80));
    } catch (const ConfigError& e) {
      CHECK(std::regex_search(e.what(), located));
      ++answered;
    }
  }
  CHECK(answered == inputs.size());
}

TEST_CASE("malformed docker-setup.sh files are answered by located errors", "[fault][malformed]") {
  auto inputs = malformed_scripts();
  INFO("generated docker-setup.sh files: " << inputs.size());
  CHECK(inputs.size() >= 140);
  for (const auto& text : inputs) {
    try {
      parse_setup_script(text, "docker-setup.sh");
      FAIL_CHECK("accepted: " << text.substr(0, 80));
    } catch (const ScriptError& e) {
      CHECK(std::regex_search(e.what(), located));
    }
  }
}
