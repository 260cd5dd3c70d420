#pragma once

#include <memory>

#include <caf/all.hpp>

#include "actors/cluster.hpp"
#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "actors/plugin_host.hpp"
#include "engine/cluster.hpp"
#include "engine/config.hpp"
#include "engine/ids.hpp"
#include "engine/metrics.hpp"
#include "storage/store.hpp"

namespace imengine {

// The actors of one node without its client network: the LMDB store, the
// actor system, the storage writer, the fanout and reader actors, the
// directory of user and conversation actors, and in a cluster the node
// actor published on the cluster port and the peers actor that links to
// the other nodes; built and stopped in the one right order. The node
// (engine/node/) adds the WebSocket server around it; actor tests use it
// as it is.
class node_actors {
public:
  // Opens the store (throws storage::lmdb_error), registers the message
  // types on `caf_cfg` (which must outlive this; in a cluster it also
  // loads CAF's middleman) and spawns the actors; in a cluster, publishes
  // the directory actor (throws std::runtime_error if the port cannot be bound);
  // loads the plugins of cfg.plugins (throws std::runtime_error naming the
  // one that cannot start).
  node_actors(caf::actor_system_config& caf_cfg, const engine_config& cfg);
  ~node_actors();   // stop(), then the actor system, then the store
  node_actors(const node_actors&) = delete;
  node_actors& operator=(const node_actors&) = delete;

  caf::actor_system& system() { return *sys_; }
  node_context& context() { return ctx_; }
  directory& dir() { return *dir_; }
  storage::store& store() { return *store_; }
  metrics& stats() { return stats_; }
  const cluster_map& cluster() const { return *cluster_; }

  // GET /metrics: the node's counters and its plugins'.
  std::string render_metrics() const;

  // Spawns every conversation whose fan-out a crash cut short: it
  // finishes the fan-out as it starts.
  void resume_fanouts();

  // Stops every user and conversation actor, the fanout and the writer
  // (which commits what is queued first), and waits for all actors of the
  // system, connections included, to be gone. Idempotent.
  void stop();

private:
  metrics stats_;
  std::unique_ptr<cluster_map> cluster_;
  mid_generator mids_;
  std::unique_ptr<storage::store> store_;   // destroyed after the actor system
  std::unique_ptr<caf::actor_system> sys_;
  node_context ctx_;
  std::unique_ptr<directory> dir_;
  directory_actor node_;     // published on the cluster port (cluster only)
  peers_actor peers_;   // links to the other nodes (cluster only)
  std::unique_ptr<plugin_host> plugins_;
  bool stopped_ = false;
};

} // namespace imengine
