#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/node_context.hpp"

namespace imengine {

struct fanout_state {
  const node_context* ctx = nullptr;
  // user -> its live connections on this node
  std::unordered_map<std::string, std::vector<local_conn>> online;
  // connection -> its user, so that a closed one is found without a scan
  std::unordered_map<caf::actor_addr, std::string> user_of;
  // timeline conversation -> its members (as the conversation told us)
  std::unordered_map<std::string, std::unordered_set<std::string>> subs;
  // user -> the timeline conversations here it is a member of
  std::unordered_map<std::string, std::unordered_set<std::string>> convs_of;
  // timeline conversation -> its actor and how many members are online
  // here; a conversation on another node hears when that leaves or comes
  // back to 0, and sends its messages only to nodes with members online.
  struct presence_count {
    conversation_actor owner;
    size_t online = 0;
  };
  std::unordered_map<std::string, presence_count> present;
  static inline const char* name = "fanout";
};

// One per node: delivers timeline (read-diffusion) messages to the node's
// live connections of their conversation's members. A conversation sends
// it one message per node, not one per member; the frame is encoded once
// per encoding, not once per connection. Membership arrives from the
// conversation in order with its messages, so a joiner gets everything
// after its join and a leaver nothing after its leave. Live pushes go
// straight to each connection's sink; a connection whose queue is long gets
// the frame as a message instead, to turn normal ones into a `notify`.
fanout_actor::behavior_type fanout_fun(fanout_actor::stateful_pointer<fanout_state> self,
                                       const node_context* ctx);

} // namespace imengine
