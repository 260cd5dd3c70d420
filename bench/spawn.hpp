#pragma once

#include <cstdint>
#include <string>
#include <vector>

// `--spawn=PATH`: the engine as a child process on a temporary data
// directory and port 0, so one command measures end to end.
namespace imbench {

class engine_child {
public:
  // Starts `PATH --host=127.0.0.1 --port=0 --data=TMP <args>` and waits up to
  // 20 s for its listening line. Engine logs go to TMP/engine.log.
  engine_child(const std::string& path, const std::vector<std::string>& args);
  ~engine_child();   // stops the engine and removes the directory
  engine_child(const engine_child&) = delete;
  engine_child& operator=(const engine_child&) = delete;

  int pid() const { return pid_; }
  uint16_t port() const { return port_; }
  // SIGTERM, 10 s grace, then SIGKILL. Returns the exit status (-1 if killed).
  int stop();

private:
  int pid_ = -1;
  uint16_t port_ = 0;
  std::string dir_;
};

} // namespace imbench
