#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "engine/ids.hpp"

namespace imengine {

struct node_context;

// A peer node while it is up, as this node reaches it.
struct peer_link {
  directory_actor node;
  fanout_actor fanout;
  reader_actor reader;
};

// Finds the actor of a user or conversation on its owner node. Owned here:
// spawned on first use; an actor that terminates is forgotten, so the next
// lookup spawns a fresh one that rebuilds its state from LMDB, and a
// conversation that crashes is respawned at once (it may have a fan-out to
// finish), at most `max_restarts` times in `restart_window`. Owned by a
// peer: the handle that peer handed out, remembered until its actor or the
// link to the peer dies (route.hpp asks the peer for it). Also the table
// of peers that are up. Thread-safe: called from actors on any thread.
class directory {
public:
  directory(caf::actor_system& sys, const node_context* ctx);
  ~directory();   // waits for an exit functor that is running; later ones do nothing

  // This node's own name, and the owner of a user or conversation.
  const std::string& self() const;
  const std::string& owner(const std::string& key) const;
  bool owns(const std::string& key) const { return owner(key) == self(); }

  // The local actor (spawned if needed) when owned here; else the
  // remembered remote one, or an invalid handle.
  user_actor user(const std::string& id);
  conversation_actor conversation(const conv_id& id);
  // An idle local user or conversation actor asks to stop: true (and
  // forgotten, so that the next lookup spawns a fresh one from LMDB) if
  // `addr` is still the actor of `id`. Under the lock: no lookup hands it
  // out afterwards.
  bool retire_user(const std::string& id, const caf::actor_addr& addr);
  bool retire_conversation(const std::string& conv, const caf::actor_addr& addr);
  // Remembers a remote handle until its proxy dies.
  void remember(const std::string& id, const user_actor& h);
  void remember(const std::string& conv, const conversation_actor& h);

  // ---- peers (set by the cluster actor)
  void peer_up(const std::string& name, peer_link link);
  void peer_down(const std::string& name);
  std::optional<peer_link> peer(const std::string& name) const;   // up peers only
  // The name of the up peer with this CAF node id ("" if none).
  std::string peer_name(const caf::node_id& id) const;
  // Every configured peer and whether it is up, by name.
  std::vector<std::pair<std::string, bool>> peer_states() const;
  // The fanout actors of every up peer (this node's is ctx->fanout).
  std::vector<std::pair<std::string, fanout_actor>> peer_fanouts() const;
  // The reader of the node that owns `key`: invalid while it is down.
  reader_actor reader_of(const std::string& key) const;
  // The readers of every configured node, this one first; a node that is
  // down has an invalid handle.
  std::vector<std::pair<std::string, reader_actor>> readers() const;

  // How many entries each table holds (for /metrics): after the users and
  // conversations of a storm are gone, all back to where they were.
  struct table_sizes {
    size_t users = 0, conversations = 0, remote_users = 0, remote_conversations = 0,
           restart_histories = 0;
  };
  table_sizes sizes() const;

  // Every live local conversation actor (to resync a peer's fanout).
  std::vector<conversation_actor> conversations() const;

  // Forgets every handle and returns the live local user and conversation
  // actors it held, to be stopped; from now on lookups return an invalid
  // handle (requests to it fail at once). One step, so that nothing spawns
  // between the list and the close (a connection whose user actor stopped
  // would otherwise start a new one that nobody stops).
  std::vector<caf::actor_addr> close();

  static constexpr int max_restarts = 5;
  static constexpr auto restart_window = std::chrono::seconds(10);

private:
  template <class Handle, class Spawn>
  Handle find_or_spawn(std::unordered_map<std::string, Handle>& map, const std::string& key,
                       Spawn spawn, std::function<void()> on_crash);
  template <class Handle>
  bool retire_in(std::unordered_map<std::string, Handle>& map, const std::string& key,
                 const caf::actor_addr& addr);
  template <class Handle>
  void remember_in(std::unordered_map<std::string, Handle>& map, const std::string& key,
                   const Handle& h);
  bool may_restart(const std::string& key);
  template <class Map, class Iter>
  static void erase_from(Map& map, Iter i);   // and shrink_if_sparse

  caf::actor_system& sys_;
  const node_context* ctx_;
  // What the exit functors attached to actors hold: they may run after the
  // directory is gone (CAF counts an actor done before its attachables
  // ran, so await_all_actors_done does not wait for them).
  struct lifeline {
    // Recursive: attaching to an actor that is already gone runs the
    // functor at once, on the thread that holds the lock.
    std::recursive_mutex mtx;
    bool alive = true;
  };
  std::shared_ptr<lifeline> life_ = std::make_shared<lifeline>();
  std::recursive_mutex& mtx_ = life_->mtx;
  std::unordered_map<std::string, user_actor> users_;
  std::unordered_map<std::string, conversation_actor> convs_;
  std::unordered_map<std::string, user_actor> remote_users_;
  std::unordered_map<std::string, conversation_actor> remote_convs_;
  std::unordered_map<std::string, peer_link> peers_;   // up peers
  bool closed_ = false;
  // key -> restart times within restart_window; none kept longer
  std::unordered_map<std::string, std::vector<std::chrono::steady_clock::time_point>> restarts_;
};

} // namespace imengine
