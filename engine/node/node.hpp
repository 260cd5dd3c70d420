#pragma once

#include <cstdint>
#include <memory>

#include "engine/config.hpp"

namespace caf {
class actor_system_config;
}

namespace imengine {

// One engine node: the LMDB store, the actor system with the storage
// writer and the user/conversation directory, and the WebSocket server.
// The one place that wires storage, actors and net together.
class node {
public:
  // `caf_cfg` carries CAF's own settings (scheduler threads, ...) and must
  // outlive the node.
  node(caf::actor_system_config& caf_cfg, engine_config cfg);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  // Opens the store, spawns the actors, finishes fan-outs a crash cut
  // short, then listens. Returns the bound port. Throws on failure.
  uint16_t start();

  // Graceful stop: no new connections, open ones closed with 1001, every
  // pending commit flushed, actors stopped, store closed. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace imengine
