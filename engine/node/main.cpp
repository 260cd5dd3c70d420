// imengine: one engine node. Flags in CAF's --name=value form, or the same
// names in caf-application.ini (see README).

#include <csignal>
#include <iostream>

#include <caf/all.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "engine/config.hpp"
#include "engine/node/node.hpp"

namespace {

struct cli_config : caf::actor_system_config {
  imengine::engine_config engine;

  cli_config() {
    auto& e = engine;
    opt_group{custom_options_, "global"}
      .add(e.host, "host", "address to listen on")
      .add(e.port, "port", "WebSocket/HTTP port (0 picks one)")
      .add(e.data, "data", "LMDB data directory")
      .add(e.node, "node", "node name")
      .add(e.auth, "auth", "none | jwt")
      .add(e.jwt_secret, "jwt-secret", "HS256 secret for --auth=jwt")
      .add(e.sync, "sync", "full (fsync each commit) | none")
      .add(e.large_group, "large-group", "members above which groups use read diffusion")
      .add(e.retransmit_ms, "retransmit-ms", "push retransmit timeout")
      .add(e.max_retransmits, "max-retransmits", "retransmits before closing with 4002")
      .add(e.heartbeat_ms, "heartbeat-ms", "ping period; silent for two periods -> dropped")
      .add(e.max_frame, "max-frame", "largest accepted frame in bytes")
      .add(e.dedupe_ttl, "dedupe-ttl", "seconds a cmid is remembered at least")
      .add(e.map_size_mb, "map-size-mb", "LMDB map size in MiB")
      .add(e.io_threads, "io-threads", "network threads")
      .add(e.push_window, "push-window", "unacked pushes per connection")
      .add(e.slow_queue, "slow-queue", "queued frames above which room pushes become notify")
      .add(e.fault_injection, "fault-injection", "serve _crash frames that kill actors (tests)");
  }
};

std::string check(const imengine::engine_config& e) {
  if (e.auth != "none" && e.auth != "jwt")
    return "--auth must be none or jwt";
  if (e.auth == "jwt" && e.jwt_secret.empty())
    return "--auth=jwt needs --jwt-secret";
  if (e.sync != "full" && e.sync != "none")
    return "--sync must be full or none";
  if (e.max_frame < 256 || e.heartbeat_ms < 10 || e.retransmit_ms < 10 || e.push_window < 1
      || e.io_threads < 1)
    return "a numeric flag is out of range";
  return {};
}

} // namespace

int main(int argc, char** argv) {
  // SIGINT/SIGTERM are taken by sigwait on this thread only: block them
  // before any other thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // Logs go to stderr: stdout carries only the "listening" line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("imengine"));
  cli_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "imengine: " << to_string(err) << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  if (auto problem = check(cfg.engine); !problem.empty()) {
    std::cerr << "imengine: " << problem << "\n";
    return 2;
  }
  try {
    imengine::node n(cfg, cfg.engine);
    auto port = n.start();
    // Tests and scripts wait for this line.
    std::cout << "imengine listening on ws://" << cfg.engine.host << ":" << port << "/ws"
              << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("signal {}: stopping", sig);
    n.stop();
  } catch (const std::exception& e) {
    spdlog::critical("imengine: {}", e.what());
    return 1;
  }
  return 0;
}
