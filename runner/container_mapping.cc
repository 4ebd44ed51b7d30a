#include "runner/container_mapping.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace ce::runner {

namespace {
const char* const signature = "ce-run docker-container 1";

bool is_hex(const std::string& s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

const MappingEntry* ContainerMapping::find(const std::string& commit) const {
  for (const auto& e : entries)
    if (e.commit == commit) return &e;
  return nullptr;
}

void ContainerMapping::put(MappingEntry entry) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->commit == entry.commit) {
      entries.erase(it);
      break;
    }
  }
  entries.insert(entries.begin(), std::move(entry));
  if (entries.size() > max_entries) entries.resize(max_entries);
}

MappingRead parse_mapping(const std::string& text) {
  MappingRead read;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) {
    read.problem = "it is empty";
    return read;
  }
  if (line != signature) {
    if (line.rfind("ce-run docker-container ", 0) == 0)
      read.problem = "it is of another version (" + line.substr(24) + ")";
    else
      read.problem = "its first line is not \"" + std::string(signature) + "\"";
    return read;
  }
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    MappingEntry e;
    std::string extra;
    fields >> e.commit >> e.tree >> e.container >> e.stage_key >> e.created;
    std::string commit_hex = e.commit.substr(0, 40);
    bool ok = !e.created.empty() && !(fields >> extra) && is_hex(commit_hex, 40, 40) &&
              (e.commit.size() == 40 || e.commit.substr(40) == "-dirty") && is_hex(e.container, 12, 64);
    if (!ok) {
      read.mapping.entries.clear();
      read.problem = "line " + std::to_string(number) + " is damaged";
      return read;
    }
    read.mapping.entries.push_back(std::move(e));
  }
  if (!text.empty() && text.back() != '\n') {
    read.mapping.entries.clear();
    read.problem = "it was cut short";
  }
  return read;
}

MappingRead read_mapping(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};  // no file yet: nothing to say
  std::ostringstream text;
  text << in.rdbuf();
  return parse_mapping(text.str());
}

std::string format_mapping(const ContainerMapping& mapping) {
  std::string out = std::string(signature) + "\n# computation(commit) -> container; written by ce-run\n";
  for (const auto& e : mapping.entries)
    out += e.commit + " " + e.tree + " " + e.container + " " + e.stage_key + " " + e.created + "\n";
  return out;
}

void write_mapping(const std::string& path, const ContainerMapping& mapping) {
  std::string text = format_mapping(mapping);
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + temp + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error("cannot write " + temp + ": " + std::strerror(error));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write " + temp + ": " + std::strerror(error));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot replace " + path + ": " + std::strerror(error));
  }
}

}  // namespace ce::runner
