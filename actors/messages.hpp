#pragma once

// The actor contract of one engine node: one atom per meaning, the payload
// types with their CAF `inspect`, and one `typed_actor` alias per actor,
// so that the compiler checks every send and every handler against it.
// Types that cross nodes are registered in one list (wire_types.hpp).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "engine/amend.hpp"
#include "engine/api_types.hpp"
#include "engine/conv_list.hpp"
#include "engine/error.hpp"
#include "engine/frame.hpp"
#include "engine/frame_sink.hpp"
#include "engine/group.hpp"
#include "engine/message.hpp"

namespace imengine::storage {
class store;
class txn;
} // namespace imengine::storage

namespace imengine {

// ---- atoms: one per meaning

using send_atom = caf::atom_constant<caf::atom("send")>;            // commit new messages
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;      // an inbox copy
using register_atom = caf::atom_constant<caf::atom("register")>;    // a device comes online
using unregister_atom = caf::atom_constant<caf::atom("unregister")>;
using online_atom = caf::atom_constant<caf::atom("online")>;        // a local connection, to the fanout
using ack_atom = caf::atom_constant<caf::atom("ack")>;              // a device acked up to an iseq
using sync_atom = caf::atom_constant<caf::atom("sync")>;            // a page of the inbox
using frame_atom = caf::atom_constant<caf::atom("frame")>;          // a client frame
using closed_atom = caf::atom_constant<caf::atom("closed")>;        // the socket is gone
using push_atom = caf::atom_constant<caf::atom("push")>;            // an inbox message to push
using kick_atom = caf::atom_constant<caf::atom("kick")>;            // close with a code
using held_atom = caf::atom_constant<caf::atom("held")>;            // a timeline push held back
using notify_atom = caf::atom_constant<caf::atom("notify")>;        // time to send held-back notifies
using retransmit_atom = caf::atom_constant<caf::atom("retransmit")>; // retransmit timer
using persist_atom = caf::atom_constant<caf::atom("persist")>;      // write device acks
using refanout_atom = caf::atom_constant<caf::atom("refanout")>;    // retry a fan-out
using commit_atom = caf::atom_constant<caf::atom("commit")>;        // commit the queued writes
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;          // expire dedupe entries
using stop_atom = caf::atom_constant<caf::atom("stop")>;            // commit, then quit
using members_atom = caf::atom_constant<caf::atom("members")>;      // timeline membership
using timeline_atom = caf::atom_constant<caf::atom("timeline")>;    // a committed timeline message
using group_atom = caf::atom_constant<caf::atom("group")>;          // a membership change
using read_atom = caf::atom_constant<caf::atom("read")>;            // read up to a seq
using receipt_atom = caf::atom_constant<caf::atom("receipt")>;      // a dm peer read
using unread_atom = caf::atom_constant<caf::atom("unread")>;        // unread counts
using typing_atom = caf::atom_constant<caf::atom("typing")>;        // a user is typing
using watch_atom = caf::atom_constant<caf::atom("watch")>;          // subscribe to presence
using presence_atom = caf::atom_constant<caf::atom("presence")>;    // online state changed
using history_atom = caf::atom_constant<caf::atom("history")>;      // a page of a timeline
using info_atom = caf::atom_constant<caf::atom("info")>;            // a group's members and mode
using hello_atom = caf::atom_constant<caf::atom("hello")>;          // a peer node introduces itself
using user_atom = caf::atom_constant<caf::atom("user")>;            // the actor of a user
using conv_atom = caf::atom_constant<caf::atom("conv")>;            // the actor of a conversation
using resync_atom = caf::atom_constant<caf::atom("resync")>;        // a fanout (re)joined
using rejoin_atom = caf::atom_constant<caf::atom("rejoin")>;        // retry what a node's death broke
using auth_deadline_atom = caf::atom_constant<caf::atom("authdline")>; // no auth in time: close
using send_deadline_atom = caf::atom_constant<caf::atom("senddline")>; // sends unanswered in time
using fanout_deadline_atom = caf::atom_constant<caf::atom("fandline")>; // copies unconfirmed in time
using sharing_atom = caf::atom_constant<caf::atom("sharing")>;      // who shares a conversation
using drain_atom = caf::atom_constant<caf::atom("drain")>;          // stopping: answer, then close
using token_expiry_atom = caf::atom_constant<caf::atom("tokenexp")>; // the session's token expired
using position_atom = caf::atom_constant<caf::atom("position")>;    // where a member's copies start
using interest_atom = caf::atom_constant<caf::atom("interest")>;    // a node has members online (or not)
using http_atom = caf::atom_constant<caf::atom("http")>;            // a server API request
using disconnect_atom = caf::atom_constant<caf::atom("disconnect")>; // close every device of a user
using restart_atom = caf::atom_constant<caf::atom("restart")>;      // respawn a plugin's actor
using convs_atom = caf::atom_constant<caf::atom("convs")>;          // a page of the conversation list
using mute_atom = caf::atom_constant<caf::atom("mute")>;            // mute or unmute a conversation
using amend_atom = caf::atom_constant<caf::atom("amend")>;          // recall or edit a message
using mention_atom = caf::atom_constant<caf::atom("mention")>;      // a timeline message names a user
using ok_atom = caf::ok_atom;

// ---- payloads

// The outcome of a send or send_batch: consecutive seqs first..last.
struct send_ack {
  std::string conv;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::vector<uint64_t> mids;
  int64_t ts = 0;
  bool dup = false;
};

// A page of a user's inbox: (iseq, message) ascending.
struct inbox_page {
  std::vector<std::pair<uint64_t, message>> items;
  bool more = false;
};

// A history request: ascending after `after`, or descending before
// `before` when `descending`.
struct history_query {
  std::string conv;
  uint64_t after = 0;
  uint64_t before = 0;
  bool descending = false;
  uint32_t limit = 50;
};

struct message_page {
  std::vector<message> items;
  bool more = false;
};

// A page of a user's conversation list: `limit` rows after `after`, or
// from the most recent when `from_top`.
struct convs_query {
  bool from_top = true;
  list_position after;
  uint32_t limit = 50;
};

inline convs_query query_of(const convs_req& r) {
  convs_query q;
  q.from_top = !r.after;
  if (r.after)
    q.after = *r.after;
  q.limit = r.limit;
  return q;
}

struct group_info {
  std::vector<std::string> members;   // ordered by user
  std::string owner;
  diffusion mode = diffusion::inbox;
  uint64_t last_seq = 0;
};

// A unit of work for the storage writer, run inside its one write
// transaction. It must check before it writes: returning an error means it
// wrote nothing. Local only (a closure cannot cross nodes).
struct write_job {
  std::function<errc(storage::store&, storage::txn&)> apply;
};

// ---- the actors' interfaces

// One per WebSocket (actors/connection.hpp).
using connection_actor = caf::typed_actor<
  caf::reacts_to<frame_atom, std::string, bool>,                   // from net/: data, binary
  caf::reacts_to<closed_atom>,                                     // from net/
  caf::reacts_to<push_atom, uint64_t, message>,                    // from user: iseq, message
  caf::reacts_to<kick_atom, uint16_t>,                             // from user: close code
  caf::reacts_to<read_atom, std::string, uint64_t>,                // another device read conv
  caf::reacts_to<mute_atom, std::string, bool>,                    // another device muted conv
  caf::reacts_to<mention_atom, std::string, uint64_t, std::string>, // conv, seq, from
  caf::reacts_to<receipt_atom, std::string, std::string, uint64_t>, // dm peer read: conv, user
  caf::reacts_to<typing_atom, std::string, std::string>,           // conv, user
  caf::reacts_to<presence_atom, std::string, bool>,                // user, online
  caf::reacts_to<held_atom, std::string, uint64_t>,                // from fanout: conv, seq
  caf::reacts_to<retransmit_atom>,                                 // own timer
  caf::reacts_to<notify_atom>,                                     // own timer
  caf::reacts_to<rejoin_atom>,                                     // own timer
  caf::reacts_to<auth_deadline_atom>,                              // own timer
  caf::reacts_to<send_deadline_atom>,                              // own timer
  caf::reacts_to<token_expiry_atom>,                               // own timer
  caf::reacts_to<drain_atom>>;                                     // from the node: stopping

// One per user: the inbox (actors/user.hpp).
using user_actor = caf::typed_actor<
  caf::replies_to<register_atom, std::string, connection_actor>::with<uint64_t>,  // device -> head
  caf::reacts_to<unregister_atom, std::string, connection_actor>,
  caf::replies_to<deliver_atom, message>::with<bool>,               // -> new copy, no device online
  caf::replies_to<sync_atom, uint64_t, uint32_t>::with<inbox_page>,   // after, limit
  caf::reacts_to<ack_atom, std::string, uint64_t>,                    // device, iseq
  caf::reacts_to<read_atom, std::string, uint64_t, std::string>,      // conv, seq, device
  caf::reacts_to<mute_atom, std::string, bool, std::string>,          // conv, on, device
  caf::replies_to<mention_atom, std::string, uint64_t, std::string>::with<bool>,  // conv, seq, from -> no device online
  caf::reacts_to<receipt_atom, std::string, std::string, uint64_t>,   // conv, reader, seq
  caf::reacts_to<typing_atom, std::string, std::string>,              // conv, user
  caf::replies_to<watch_atom, connection_actor>::with<bool>,          // -> online now
  caf::replies_to<disconnect_atom, uint16_t>::with<uint32_t>,         // close code -> devices closed
  caf::reacts_to<persist_atom>>;                                      // own timer

// One per node: the read side of what the node's store holds: history,
// group info, read positions, unread counts, mute and the conversation
// list (actors/reader.hpp).
using reader_actor = caf::typed_actor<
  caf::replies_to<history_atom, std::string, history_query>::with<message_page>,  // user
  caf::replies_to<info_atom, std::string, std::string>::with<group_info>,         // user, conv
  // user, conv, seq, device
  caf::replies_to<read_atom, std::string, std::string, uint64_t, std::string>::with<ok_atom>,
  caf::replies_to<unread_atom, std::string>::with<std::vector<unread_entry>>,     // user
  caf::replies_to<convs_atom, std::string, convs_query>::with<conv_page>,         // user
  // user, conv, on, device
  caf::replies_to<mute_atom, std::string, std::string, bool, std::string>::with<ok_atom>,
  // user, conv -> the seq after which the user's inbox copies start (its join)
  caf::replies_to<position_atom, std::string, std::string>::with<uint64_t>,
  // user, others -> those of the others who share a dm or group with user
  caf::replies_to<sharing_atom, std::string, std::vector<std::string>>::with<
    std::vector<std::string>>>;

// A connection as the node's fanout actor holds it: the actor, and its sink
// so that live timeline pushes go straight to the socket's queue without a
// message to the connection actor per push. Local only.
struct local_conn {
  connection_actor actor;
  std::shared_ptr<frame_sink> sink;
  bool msgpack = false;   // the connection's push encoding
};

// One per node: timeline pushes to its connections (actors/fanout.hpp).
using fanout_actor = caf::typed_actor<
  caf::reacts_to<online_atom, std::string, local_conn>,              // user, connection
  // conv, added, removed, reset
  caf::reacts_to<members_atom, std::string, std::vector<std::string>, std::vector<std::string>,
                 bool>,
  caf::reacts_to<timeline_atom, message>,
  caf::reacts_to<typing_atom, std::string, std::string>>;            // conv, user

// One per conversation: the only writer of its timeline (actors/conversation.hpp).
using conversation_actor = caf::typed_actor<
  // user, device, messages
  caf::replies_to<send_atom, std::string, std::string, std::vector<send_item>>::with<send_ack>,
  // op, acting user, users
  caf::replies_to<group_atom, group_op, std::string, std::vector<std::string>>::with<ok_atom>,
  // user, device, seq amended, new body (edit) -> the amending message's ack
  caf::replies_to<amend_atom, amend_op, std::string, std::string, uint64_t, std::string>::with<send_ack>,
  caf::replies_to<typing_atom, std::string>::with<ok_atom>,          // user
  caf::reacts_to<refanout_atom>,                                     // own timer
  caf::reacts_to<fanout_deadline_atom>,                              // own timer
  caf::reacts_to<resync_atom, fanout_actor>,                         // a node's fanout came up
  caf::reacts_to<interest_atom, fanout_actor, bool>>;                // it has members online

// What a node tells a peer that connects: its per-node actors.
struct node_hello {
  std::string node;
  fanout_actor fanout;
  reader_actor reader;
};

// One per node, published on the cluster port: how other nodes reach
// the actors this node owns (actors/cluster.hpp).
using directory_actor = caf::typed_actor<
  caf::replies_to<hello_atom, std::string>::with<node_hello>,        // the caller's node name
  caf::replies_to<user_atom, std::string>::with<user_actor>,          // find or spawn
  caf::replies_to<conv_atom, std::string>::with<conversation_actor>>; // find or spawn

// One per node: the server API (actors/api.hpp), and the gateway through
// which whatever is not a client connection (the API, plugin bots) sends
// as a user or as system_user, after the checks a client send gets.
// Local only: reach another node's conversations through this node's one.
using api_actor = caf::typed_actor<
  // from, conv, message -> the ack of the commit (dup:true for a resent cmid)
  caf::replies_to<send_atom, std::string, std::string, send_item>::with<send_ack>,
  caf::replies_to<http_atom, api_request>::with<api_response>>;

// One per node: the only LMDB writer (actors/storage_writer.hpp).
using writer_actor = caf::typed_actor<
  caf::replies_to<write_job>::with<ok_atom>,
  caf::reacts_to<commit_atom>,                                       // own: end of a batch
  caf::reacts_to<sweep_atom>,                                        // own timer
  caf::reacts_to<stop_atom>>;

// One per node with plugins: respawns the hook actors that crash
// (actors/plugin_host.hpp). Its own timer names the hook to respawn.
using plugin_supervisor_actor = caf::typed_actor<caf::reacts_to<restart_atom, uint32_t>>;

// ---- inspection (CAF 0.17 style)

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message& x) {
  return f(caf::meta::type_name("message"), x.conv, x.seq, x.mid, x.from, x.device,
           x.cmid, x.type, x.body, x.ex, x.ts, x.prio, x.mentions, x.recalled_by, x.edited,
           x.edits);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_item& x) {
  return f(caf::meta::type_name("send_item"), x.cmid, x.type, x.body, x.ex, x.prio, x.mentions);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_ack& x) {
  return f(caf::meta::type_name("send_ack"), x.conv, x.first_seq, x.last_seq, x.mids,
           x.ts, x.dup);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unread_entry& x) {
  return f(caf::meta::type_name("unread_entry"), x.conv, x.last_seq, x.read_seq);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_position& x) {
  return f(caf::meta::type_name("list_position"), x.ts, x.conv);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conv_summary& x) {
  return f(caf::meta::type_name("conv_summary"), x.at, x.last_seq, x.read_seq, x.mentions,
           x.muted, x.last);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, convs_query& x) {
  return f(caf::meta::type_name("convs_query"), x.from_top, x.after, x.limit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conv_page& x) {
  return f(caf::meta::type_name("conv_page"), x.rows, x.more);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inbox_page& x) {
  return f(caf::meta::type_name("inbox_page"), x.items, x.more);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, history_query& x) {
  return f(caf::meta::type_name("history_query"), x.conv, x.after, x.before, x.descending,
           x.limit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message_page& x) {
  return f(caf::meta::type_name("message_page"), x.items, x.more);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_hello& x) {
  return f(caf::meta::type_name("node_hello"), x.node, x.fanout, x.reader);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, api_request& x) {
  return f(caf::meta::type_name("api_request"), x.method, x.target, x.body);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, api_response& x) {
  return f(caf::meta::type_name("api_response"), x.status, x.body);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_info& x) {
  return f(caf::meta::type_name("group_info"), x.members, x.owner, x.mode, x.last_seq);
}

// ---- errors as values

// errc inside caf::error (category "imengine").
caf::error make_error(errc code);
caf::error make_error(errc code, std::string msg);

// The protocol error a failed request maps to: our own category as is,
// CAF's own errors (a dead or slow actor) as unavailable/internal.
failure to_failure(const caf::error& e);

// Registers the error category and every type of wire_types.hpp on a
// node's config. Every node of a cluster must call it.
void add_message_types(caf::actor_system_config& cfg);

} // namespace imengine

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(imengine::write_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(imengine::local_conn)
