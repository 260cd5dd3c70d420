#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/route.hpp"
#include "engine/ids.hpp"

namespace imengine {

struct node_context;

struct reader_state {
  const node_context* ctx = nullptr;
  // `user \0 conv` -> read position ahead of the store while its write is
  // pending; dropped once the store has it.
  std::unordered_map<std::string, uint64_t> pending_reads;
  lookups<user_actor> inboxes;   // readers' inboxes on other nodes (device sync)
  static inline const char* name = "reader";
};

// One per node: answers the reads of what this node's store holds, for any
// connection of the cluster: history and group info (members only), and
// read state. Read positions live with the conversation, so that a read is
// clamped to the conversation's last seq and counted against it where both
// are; `unread` answers for the conversations of this node. A read and a
// later unread of one connection arrive here in that order, and the
// pending position is counted before the store has it.
reader_actor::behavior_type reader_fun(reader_actor::stateful_pointer<reader_state> self,
                                       const node_context* ctx);

} // namespace imengine
