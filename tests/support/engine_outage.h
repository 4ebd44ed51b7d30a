// The Docker engine going away for a test, for real: dockerd stopped with a
// signal, and started again (scripts/start-docker) when the scope ends,
// whatever happened in it. For [outage] cases only (ctest runs them alone).
#pragma once

namespace ce::test {

// Stops dockerd with `sig` and waits until it is gone; starts it again when
// the scope ends, whatever happened in it. (No REQUIRE in the constructor:
// it would skip the destructor and leave the engine down for every later
// test.)
class EngineOutage {
 public:
  explicit EngineOutage(int sig);
  ~EngineOutage() { restore(); }
  bool stopped() const { return stopped_; }
  void restore();

 private:
  bool stopped_ = false;
  bool restored_ = false;
};

}  // namespace ce::test
