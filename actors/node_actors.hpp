#pragma once

#include <memory>

#include <caf/all.hpp>

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "engine/config.hpp"
#include "engine/ids.hpp"
#include "engine/metrics.hpp"
#include "storage/store.hpp"

namespace imengine {

// The actors of one node without its network: the LMDB store, the actor
// system, the storage writer, the fanout actor and the directory of user
// and conversation actors, built and stopped in the one right order. The
// node (engine/node/) adds the WebSocket server around it; actor tests use
// it as it is.
class node_actors {
public:
  // Opens the store (throws storage::lmdb_error), registers the message
  // types on `caf_cfg` (which must outlive this) and spawns the actors.
  node_actors(caf::actor_system_config& caf_cfg, const engine_config& cfg);
  ~node_actors();   // stop(), then the actor system, then the store
  node_actors(const node_actors&) = delete;
  node_actors& operator=(const node_actors&) = delete;

  caf::actor_system& system() { return *sys_; }
  node_context& context() { return ctx_; }
  directory& dir() { return *dir_; }
  storage::store& store() { return *store_; }
  metrics& stats() { return stats_; }

  // Spawns every conversation whose fan-out a crash cut short: it
  // finishes the fan-out as it starts.
  void resume_fanouts();

  // Stops every user and conversation actor, the fanout and the writer
  // (which commits what is queued first), and waits for all actors of the
  // system, connections included, to be gone. Idempotent.
  void stop();

private:
  metrics stats_;
  mid_generator mids_;
  std::unique_ptr<storage::store> store_;   // destroyed after the actor system
  std::unique_ptr<caf::actor_system> sys_;
  node_context ctx_;
  std::unique_ptr<directory> dir_;
  bool stopped_ = false;
};

} // namespace imengine
