#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/route.hpp"

namespace imengine {

struct node_context;

struct user_state {
  const node_context* ctx = nullptr;
  std::string user;
  uint64_t head = 0;       // last committed iseq
  uint64_t assigned = 0;   // last iseq handed out
  uint64_t epoch = 0;      // bumps when a failed commit rolls state back
  // conv -> highest seq accepted into this inbox (loaded on first use)
  std::unordered_map<std::string, uint64_t> accepted;
  std::unordered_map<std::string, connection_actor> devices;   // live connections
  std::unordered_map<std::string, uint64_t> acked;       // not yet persisted
  bool ack_flush_scheduled = false;
  std::unordered_map<caf::actor_addr, connection_actor> watchers;   // presence_sub
  lookups<user_actor> peers;   // dm peers' inboxes on other nodes (receipts)
  static inline const char* name = "user";
};

// One per user: the inbox. Appends the copies conversations deliver, each
// with the next gapless iseq, exactly once per (conv, seq) and in seq order
// per conversation; pushes each committed copy to every live connection of
// the user; keeps per-device acked positions; syncs reads to the user's
// other devices (receipts to dm peers); answers inbox pages; relays
// typing; tells presence watchers when the user comes online (first
// device) or goes offline (last device).
user_actor::behavior_type user_fun(user_actor::stateful_pointer<user_state> self,
                                   const node_context* ctx, std::string user);

} // namespace imengine
