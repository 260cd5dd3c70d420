// imengine: one engine node. Flags in CAF's --name=value form, or the same
// names in caf-application.ini (see README).

#include <csignal>
#include <iostream>

#include <caf/all.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "engine/api_auth.hpp"
#include "engine/cluster.hpp"
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
      .add(e.recall_window, "recall-window", "seconds a sender may recall or edit a message")
      .add(e.fault_injection, "fault-injection", "serve _crash frames that kill actors (tests)")
      .add(e.api_key, "api-key", "enables the server API under /api/ with this bearer key")
      .add(e.api_key_file, "api-key-file", "as --api-key, the key read from this file")
      .add(e.peers, "peers", "cluster nodes: n1@host:port,n2@host:port,... (may include this one)")
      .add(e.cluster_port, "cluster-port", "this node's cluster port (default: its --peers entry)")
      .add(e.cluster_host, "cluster-host", "address the cluster port binds")
      .add(e.plugins, "plugins", "actor plugins to load: [\"/path/a.so\",...]")
      .add(e.plugin_config, "plugin-config", "JSON file: one settings object per plugin name");
  }
};

// The cluster flags, checked and completed: this node's cluster port
// comes from its own --peers entry unless given.
std::string check_cluster(imengine::engine_config& e) {
  if (!imengine::valid_node(e.node))
    return "--node must be 1-32 chars of [A-Za-z0-9_-]";
  auto peers = imengine::parse_peers(e.peers);
  if (!peers)
    return peers.error().msg;
  for (const auto& p : *peers) {
    if (p.name != e.node)
      continue;
    if (e.cluster_port != 0 && e.cluster_port != p.port)
      return "--cluster-port " + std::to_string(e.cluster_port) + " differs from " + p.name
             + "'s --peers entry (port " + std::to_string(p.port) + ")";
    e.cluster_port = p.port;
  }
  if (peers->size() > 1024)   // message ids hold a 10-bit node number
    return "--peers lists more than 1024 nodes";
  if (!peers->empty() && e.cluster_port == 0)
    return "--peers needs --cluster-port (or an entry for --node " + e.node + ")";
  return {};
}

std::string check(imengine::engine_config& e) {
  if (e.auth != "none" && e.auth != "jwt")
    return "--auth must be none or jwt";
  if (e.auth == "jwt" && e.jwt_secret.empty())
    return "--auth=jwt needs --jwt-secret";
  if (e.sync != "full" && e.sync != "none")
    return "--sync must be full or none";
  if (!e.api_key_file.empty()) {
    if (!e.api_key.empty())
      return "give --api-key or --api-key-file, not both";
    auto key = imengine::read_api_key_file(e.api_key_file);
    if (!key)
      return key.error().msg;
    e.api_key = *key;
  }
  if (e.max_frame < 256 || e.heartbeat_ms < 10 || e.retransmit_ms < 10 || e.push_window < 1
      || e.io_threads < 1)
    return "a numeric flag is out of range";
  return check_cluster(e);
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
