#pragma once

#include <atomic>
#include <chrono>

#include "actors/messages.hpp"

#include "engine/config.hpp"
#include "engine/ids.hpp"
#include "engine/metrics.hpp"

namespace imengine::storage {
class store;
}

namespace imengine {

class cluster_map;
class directory;
struct plugin_registry;

// What every actor of a node shares. Owned by the node, which outlives
// every actor.
struct node_context {
  engine_config cfg;
  storage::store* store = nullptr;
  writer_actor writer;
  fanout_actor fanout;   // timeline deliveries to this node's connections
  reader_actor reader;   // history, group info, read state of this node's store
  api_actor api;         // the server API, and the gateway bots send through
  imengine::metrics* metrics = nullptr;
  mid_generator* mids = nullptr;
  directory* dir = nullptr;
  const cluster_map* cluster = nullptr;   // owners of users and conversations
  const plugin_registry* plugins = nullptr;   // hooks of loaded plugins (none: null)
  // Fault injection (tests, with cfg.fault_injection): the next register
  // at any user actor is refused, as by an inbox that cannot take it.
  mutable std::atomic<bool> refuse_next_register{false};
  // ... and the next send a conversation takes is never answered.
  mutable std::atomic<bool> stall_next_send{false};
  // ... and the next copy an inbox is given is dropped unanswered.
  mutable std::atomic<bool> drop_next_deliver{false};
};

// How long a user or conversation actor waits without a message before it
// checks whether it may stop (--actor-idle-s; 0: never, checked daily).
inline std::chrono::seconds idle_period(const node_context* ctx) {
  return std::chrono::seconds(ctx->cfg.actor_idle_s > 0 ? ctx->cfg.actor_idle_s : 86400);
}

} // namespace imengine
