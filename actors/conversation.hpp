#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/plugins.hpp"
#include "actors/route.hpp"
#include "engine/ids.hpp"

namespace imengine {

struct node_context;

struct conversation_state {
  const node_context* ctx = nullptr;
  conv_id id;
  std::vector<std::string> members;           // as of the last assigned seq
  std::map<std::string, member_role> roles;    // g:/r: member -> role
  uint64_t assigned = 0;    // last seq handed out
  uint64_t committed = 0;   // last seq the store confirmed
  uint64_t epoch = 0;       // bumps when a failed commit rolls `assigned` back
  caf::error epoch_failure;  // why the last epoch ended: its later commits failed for it
  // Sends in flight by `user \0 cmid`: a request naming any of them waits
  // for that commit, then is judged against the dedupe table.
  struct waiter {
    std::vector<send_item> items;
    caf::typed_response_promise<send_ack> rp;
  };
  std::unordered_map<std::string, std::shared_ptr<std::vector<waiter>>> inflight;
  // Fan-out to member inboxes.
  uint64_t fanout_done = 0;        // every seq <= this is in every inbox
  uint64_t fanout_persisted = 0;   // ... and the store knows it
  bool fanout_write_pending = false;
  bool fanout_retry_scheduled = false;
  std::chrono::milliseconds retry_delay{1000};   // grows while retries fail
  lookups<user_actor> inboxes;   // members' inboxes on other nodes, being looked up
  // Fanouts of other nodes with members of this timeline online: the only
  // ones its messages go to (membership goes to every node).
  std::unordered_set<caf::actor_addr> interested;
  uint64_t round = 0;              // replies of older rounds are ignored
  // Copies of a seq not yet confirmed, and since when. Copies to this
  // node's inboxes have no CAF timeout: one timer checks the oldest.
  struct copies {
    size_t left = 0;
    std::chrono::steady_clock::time_point since;
  };
  std::map<uint64_t, copies> outstanding;
  bool fanout_timer_armed = false;
  // Replies owed to requesters, answered after their commit. If the actor
  // dies first (a crash), the destructor tells them to resend.
  uint64_t last_reply = 0;
  std::unordered_map<uint64_t, caf::response_promise> replies;
  // The plugins' hooks for this conversation (none: nothing below is used).
  conv_hooks hooks;
  // Sends waiting for before_persist verdicts, and the operations that
  // arrived behind them: run in mailbox order, each once it is ready.
  struct staged_op {
    bool ready = false;
    std::function<void()> run;
  };
  std::deque<std::shared_ptr<staged_op>> staged;
  ~conversation_state();
  static inline const char* name = "conversation";
};

// One per conversation: the only writer of its timeline. Assigns gapless
// seqs in mailbox order, dedupes by (user, cmid), acks after the commit,
// then copies each message into every member's inbox (write diffusion),
// tracking a persisted watermark so that a fan-out cut short by a crash is
// finished when the actor next starts.
conversation_actor::behavior_type
conversation_fun(conversation_actor::stateful_pointer<conversation_state> self,
                 const node_context* ctx, conv_id id);

} // namespace imengine
