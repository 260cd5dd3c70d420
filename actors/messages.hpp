#pragma once

// Every message the engine's actors exchange, declared in one place:
// the atoms, the payload types with their CAF `inspect`, and the error
// category that carries an imengine::errc inside a caf::error.
//
//   storage_writer  <- write_job                          -> ok_atom | error
//                   <- stop_atom                             (commit, then quit)
//   conversation    <- send_atom, user, device, vector<send_item>
//                                                         -> send_ack | error
//   user (inbox)    <- register_atom, device, actor conn  -> uint64_t inbox head
//                   <- unregister_atom, device, actor conn
//                   <- deliver_atom, message              -> ok_atom | error
//                   <- ack_atom, device, uint64_t iseq
//                   <- read_atom, conv, uint64_t seq, device    (from a connection)
//                   <- receipt_atom, conv, reader, uint64_t seq (from a dm peer)
//                   <- unread_atom                -> vector<unread_entry>
//                   <- typing_atom, conv, user                  (from a conversation)
//                   <- presence_atom, actor watcher -> bool online now
//   conversation    <- typing_atom, user
//                   <- group_atom, op ("create"|"add"|"remove"), actor, vector<user>
//                                                         -> ok_atom | error
//   fanout          <- register_atom, user, local_conn          (a connection authed)
//                   <- members_atom, conv, vector<user> added, vector<user> removed,
//                      bool reset                            (from a timeline conversation)
//                   <- timeline_atom, message                 (a committed timeline message)
//                   <- typing_atom, conv, user                (typing in a timeline conversation)
//   connection      <- frame_atom, string data, bool binary   (from net/)
//                   <- closed_atom                             (from net/)
//                   <- push_atom, uint64_t iseq, message       (from user)
//                   <- kick_atom, uint16_t close code          (from user)
//                   <- read_atom, conv, uint64_t seq           (another device read)
//                   <- receipt_atom, conv, user, uint64_t seq  (dm peer read)
//                   <- typing_atom, conv, user
//                   <- presence_atom, user, bool online
//                   <- timeline_atom, conv, uint64_t seq       (from fanout: a push it held
//                                                                back, to announce with notify)

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "engine/error.hpp"
#include "engine/frame.hpp"
#include "engine/frame_sink.hpp"
#include "engine/message.hpp"

namespace imengine::storage {
class store;
class txn;
} // namespace imengine::storage

namespace imengine {

using send_atom = caf::atom_constant<caf::atom("send")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using unregister_atom = caf::atom_constant<caf::atom("unregister")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using frame_atom = caf::atom_constant<caf::atom("frame")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using push_atom = caf::atom_constant<caf::atom("push")>;
using kick_atom = caf::atom_constant<caf::atom("kick")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using members_atom = caf::atom_constant<caf::atom("members")>;
using timeline_atom = caf::atom_constant<caf::atom("timeline")>;
using group_atom = caf::atom_constant<caf::atom("group")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using receipt_atom = caf::atom_constant<caf::atom("receipt")>;
using unread_atom = caf::atom_constant<caf::atom("unread")>;
using typing_atom = caf::atom_constant<caf::atom("typing")>;
using presence_atom = caf::atom_constant<caf::atom("presence")>;
using ok_atom = caf::ok_atom;

// The outcome of a send or send_batch: consecutive seqs first..last.
struct send_ack {
  std::string conv;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::vector<uint64_t> mids;
  int64_t ts = 0;
  bool dup = false;
};

// A connection as the node's fanout actor holds it: the actor, and its sink
// so that live timeline pushes go straight to the socket's queue without a
// message to the connection actor per push. Local only.
struct local_conn {
  caf::actor actor;
  std::shared_ptr<frame_sink> sink;
  bool msgpack = false;   // the connection's push encoding
};

// A unit of work for the storage writer, run inside its one write
// transaction. It must check before it writes: returning an error means it
// wrote nothing. Local only (a closure cannot cross nodes).
struct write_job {
  std::function<errc(storage::store&, storage::txn&)> apply;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message& x) {
  return f(caf::meta::type_name("message"), x.conv, x.seq, x.mid, x.from, x.device,
           x.cmid, x.type, x.body, x.ex, x.ts, x.prio);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_item& x) {
  return f(caf::meta::type_name("send_item"), x.cmid, x.type, x.body, x.ex, x.prio);
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

// errc inside caf::error (category "imengine").
caf::error make_error(errc code);
caf::error make_error(errc code, std::string msg);

// The protocol error a failed request maps to: our own category as is,
// CAF's own errors (a dead or slow actor) as unavailable/internal.
failure to_failure(const caf::error& e);

// Registers every message type above on a node's config. Every node of a
// cluster must call it.
void add_message_types(caf::actor_system_config& cfg);

} // namespace imengine

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(imengine::write_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(imengine::local_conn)
