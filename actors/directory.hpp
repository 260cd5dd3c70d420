#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "engine/ids.hpp"

namespace imengine {

struct node_context;

// Finds the actor of a user or conversation, spawning it on first use. An
// actor that terminates is forgotten, so the next lookup spawns a fresh one
// that rebuilds its state from LMDB. A conversation that crashes is
// respawned at once (it may have a fan-out to finish), at most
// `max_restarts` times in `restart_window` per conversation. Thread-safe:
// called from actors on any scheduler thread.
class directory {
public:
  directory(caf::actor_system& sys, const node_context* ctx);

  user_actor user(const std::string& id);
  conversation_actor conversation(const conv_id& id);

  // Every live user and conversation actor (for shutdown).
  std::vector<caf::actor_addr> all() const;

  // Forgets every handle; from now on lookups return an invalid handle
  // (requests to it fail at once), so that nothing spawns during shutdown.
  void close();

  static constexpr int max_restarts = 5;
  static constexpr auto restart_window = std::chrono::seconds(10);

private:
  template <class Handle, class Spawn>
  Handle find_or_spawn(std::unordered_map<std::string, Handle>& map, const std::string& key,
                       Spawn spawn, std::function<void()> on_crash);
  bool may_restart(const std::string& key);

  caf::actor_system& sys_;
  const node_context* ctx_;
  // Recursive: attaching to an actor that is already gone runs the functor
  // at once, on the thread that holds the lock.
  mutable std::recursive_mutex mtx_;
  std::unordered_map<std::string, user_actor> users_;
  std::unordered_map<std::string, conversation_actor> convs_;
  bool closed_ = false;
  // key -> recent restart times
  std::unordered_map<std::string, std::vector<std::chrono::steady_clock::time_point>> restarts_;
};

} // namespace imengine
