#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/ws_client.hpp"
#include "tests/support/temp_dir.hpp"

// Test support: the real engine binary in a child process on 127.0.0.1,
// with a real LMDB directory, and logged-in WebSocket clients.
namespace imengine::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;


// The engine executable the tests run: $IMENGINE_BIN when set (e.g. an
// ASan build of it, scripts/test-asan.sh), else the one built beside them.
const std::string& engine_binary();

class engine_process {
public:
  // Starts `imengine --port=0 --data=<data_dir> <args...>` and waits (with a
  // deadline) for its "listening" line. Throws on failure.
  explicit engine_process(const std::string& data_dir, std::vector<std::string> args = {});
  ~engine_process();   // SIGKILL if still running

  // SIGKILL if still running, then starts again with the same data dir and
  // args, as the constructor does. port() is the new process's port.
  void restart();

  uint16_t port() const { return port_; }
  int pid() const { return pid_; }
  // Whether it serves TLS (--tls-cert): connect() and login() use wss://
  // then, accepting its certificate unchecked.
  bool tls() const { return tls_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::vector<std::string>& args() const { return args_; }
  bool running();
  // SIGTERM, then waits up to `deadline`; returns the exit status, or -1 if
  // it had to be killed.
  int terminate(std::chrono::milliseconds deadline = 5000ms);
  // SIGKILL and reap.
  void kill9();
  // From the next start on, the engine may not write a file past `bytes`
  // (RLIMIT_FSIZE; 0: no limit): a full disk, as the engine sees it.
  void limit_file_size(uint64_t bytes) { file_limit_ = bytes; }

  std::unique_ptr<net::ws_client> connect();
  // Connects and authenticates (JSON or msgpack); checks auth_ok.
  std::unique_ptr<net::ws_client> login(const std::string& user, const std::string& device,
                                        bool msgpack = false);

private:
  void start();

  std::string data_dir_;
  std::vector<std::string> args_;
  int pid_ = -1;
  uint16_t port_ = 0;
  uint64_t file_limit_ = 0;
  bool tls_ = false;
};

// Plain HTTP GET on 127.0.0.1; returns (status, body).
std::pair<int, std::string> http_get(uint16_t port, const std::string& target);

// Polls GET /metrics until it contains `text` or the deadline passes.
bool wait_metric(uint16_t port, const std::string& text,
                 std::chrono::milliseconds deadline = 5000ms);
// One sample of a /metrics text, or of the engine's /metrics now:
// `series` is the name with its labels as rendered
// (`imengine_cluster_peer_up{peer="n2"}`); nullopt when absent. Values
// are truncated to integers.
std::optional<uint64_t> metric(const std::string& exposition, const std::string& series);
std::optional<uint64_t> metric(uint16_t port, const std::string& series);
// The series of a per-peer metric: name{peer="..."}.
inline std::string peer_series(const std::string& name, const std::string& peer) {
  return name + "{peer=\"" + peer + "\"}";
}

// Predicates for ws_client::wait_for.
inline auto is_type(std::string t) {
  return [t = std::move(t)](const json& f) { return f.value("t", "") == t; };
}
inline auto is_push(uint64_t iseq) {
  return [iseq](const json& f) {
    return f.value("t", "") == "msg" && f.contains("iseq") && f["iseq"] == iseq;
  };
}

// Everything a paged query holds: the whole inbox (sync), or the whole
// history of one conversation.
std::vector<json> whole_inbox(net::ws_client& c);
std::vector<json> whole_history(net::ws_client& c, const std::string& conv);

// The whole conversation list, `limit` rows a page, following `next`
// (checks each page's shape, and that the last one has no cursor).
std::vector<json> whole_convs(net::ws_client& c, uint32_t limit = 50);
// The whole inbox once it holds at least n copies, or as it is when
// `limit` has passed: inbox copies commit after the sender's ack.
std::vector<json> inbox_of_at_least(net::ws_client& c, size_t n,
                                    std::chrono::milliseconds limit = std::chrono::seconds(10));

// The engine binary run to completion with `args` (a shell word list),
// bounded by coreutils' timeout: its exit code (124 on timeout) and what
// it wrote to stdout and stderr, together.
struct command_result {
  int exit_code = -1;
  std::string output;
};
command_result run_engine_command(const std::string& args, int timeout_s = 20);

// A send frame.
json send_frame(const std::string& conv, const std::string& cmid, const std::string& body);

} // namespace imengine::testing
