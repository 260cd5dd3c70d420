#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <memory>
#include <string>

#include <boost/container/deque.hpp>
#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/route.hpp"
#include "engine/frame.hpp"
#include "engine/frame_sink.hpp"

namespace imengine {

struct node_context;

struct connection_state {
  const node_context* ctx = nullptr;
  std::shared_ptr<frame_sink> sink;
  bool authed = false;
  bool closing = false;
  std::string user;
  std::string device;
  encoding push_enc = encoding::json;   // the auth frame's encoding
  user_actor inbox;                     // the user actor
  unsigned bad_streak = 0;              // bad frames in a row
  int64_t token_exp_s = INT64_MAX;      // --auth=jwt: closed with 4005 then
  unsigned expiry_timers = 0;           // token_expiry_atom timers pending
  // Graceful stop: no new frames are taken; once every send in flight is
  // answered (its ack queued before the close), the socket closes 1001.
  unsigned in_flight = 0;
  bool draining = false;
  // Sends to conversations on this node waiting for their answer, by
  // number, with their deadline: kept here, not by CAF's clock (an entry
  // per request there is a lock, two tree updates and a wake-up of the
  // clock's thread). Numbers grow with deadlines: the first expires first.
  struct send_wait {
    std::chrono::steady_clock::time_point deadline;
    req_id req;
    encoding enc;
  };
  std::map<uint64_t, send_wait> sends;
  uint64_t last_send = 0;
  bool send_timer_armed = false;
  // --rate-msgs token bucket: messages it may send now, refilled with time.
  double rate_tokens = 0;
  std::chrono::steady_clock::time_point rate_at{};
  // Push window: pushed and not yet acked, in iseq order.
  boost::container::deque<std::pair<uint64_t, frame_bytes>> window;   // empty: no memory
  uint64_t pushed = 0;     // highest iseq pushed (or known to the client)
  uint64_t acked = 0;      // highest iseq the client acked
  bool behind = false;     // pushes skipped while the window was full
  bool refilling = false;  // an inbox page for the window is on its way
  bool timer_armed = false;
  uint64_t progress_mark = 0;   // `acked` at the previous retransmit tick
  uint32_t attempts = 0;        // retransmits without progress
  // Timeline pushes held back while the outbound queue is long: conv ->
  // latest seq, sent as `notify` once the queue drains.
  std::map<std::string, uint64_t> pending_notify;
  bool notify_timer_armed = false;
  // user actors watched for presence (resubscribed if they restart)
  std::unordered_map<caf::actor_addr, std::string> watched;
  // While the node of the user, or of a watched user, is down: retried
  // with backoff until it is back.
  bool inbox_lost = false;
  std::vector<std::string> unwatched;
  bool rejoin_armed = false;
  std::chrono::milliseconds rejoin_delay{250};
  // Actors on other nodes being looked up; work for them waits in order.
  lookups<user_actor> users;
  lookups<conversation_actor> convs;
  static inline const char* name = "connection";
};

// One per WebSocket: authenticates, decodes frames in arrival order and
// routes them, answers in the frame's encoding, pushes inbox messages in
// iseq order through a bounded window with retransmits.
connection_actor::behavior_type
connection_fun(connection_actor::stateful_pointer<connection_state> self,
               const node_context* ctx, std::shared_ptr<frame_sink> sink);

} // namespace imengine
