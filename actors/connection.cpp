#include "actors/connection.hpp"

#include <chrono>

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "engine/frame_writer.hpp"
#include "engine/jwt.hpp"
#include "engine/rules.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

using self_ptr = caf::stateful_actor<connection_state>*;

constexpr auto auth_timeout = std::chrono::seconds(10);
constexpr auto send_timeout = std::chrono::seconds(30);
constexpr unsigned max_bad_streak = 20;
constexpr auto notify_check = std::chrono::milliseconds(50);

void reply_bytes(self_ptr self, std::string bytes, encoding enc) {
  self->state.sink->send(std::make_shared<const std::string>(std::move(bytes)),
                         enc == encoding::msgpack);
}

void reply(self_ptr self, const json& frame, encoding enc) {
  reply_bytes(self, encode_frame(frame, enc), enc);
}

// Every close of the sink goes through here: marked closing at once, so
// no frame, push or event follows the close, and it is closed once.
void close_with(self_ptr self, uint16_t code, std::string reason) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  st.sink->close(code, std::move(reason));
}

// Answers with an error; frames the client got wrong count towards the
// bad-frame limit, after which the connection is closed with 1008.
void reply_error(self_ptr self, req_id req, const failure& f, encoding enc) {
  auto& st = self->state;
  reply(self, error_frame(req, f.code, f.msg), enc);
  switch (f.code) {
    case errc::bad_frame:
    case errc::unknown_type:
    case errc::too_large:
    case errc::unauthorized:
      st.ctx->metrics->bad_frames++;
      if (++st.bad_streak >= max_bad_streak)
        close_with(self, 1008, "too many bad frames");
      break;
    default:
      break;
  }
}

// ---- pushes

void arm_timer(self_ptr self) {
  auto& st = self->state;
  if (st.timer_armed || st.window.empty())
    return;
  st.timer_armed = true;
  st.progress_mark = st.acked;
  self->delayed_send(self, std::chrono::milliseconds(st.ctx->cfg.retransmit_ms),
                     tick_atom::value);
}

void push(self_ptr self, uint64_t iseq, const message& m) {
  auto& st = self->state;
  auto bytes = std::make_shared<const std::string>(encode_msg(m, iseq, st.push_enc));
  st.window.emplace_back(iseq, bytes);
  st.pushed = iseq;
  st.sink->send(std::move(bytes), st.push_enc == encoding::msgpack);
  st.ctx->metrics->pushes++;
  arm_timer(self);
}

// After pushes were skipped for a full window: send what the inbox holds
// past the last push, as far as the window has room.
void refill(self_ptr self) {
  auto& st = self->state;
  if (!st.behind || st.closing)
    return;
  auto room = st.ctx->cfg.push_window - std::min<size_t>(st.window.size(), st.ctx->cfg.push_window);
  if (room == 0)
    return;
  auto t = st.ctx->store->read();
  auto page = st.ctx->store->inbox_after(t, st.user, st.pushed, static_cast<uint32_t>(room));
  for (const auto& [iseq, m] : page.items)
    push(self, iseq, m);
  st.behind = page.more;
}

void on_push(self_ptr self, uint64_t iseq, const message& m) {
  auto& st = self->state;
  if (!st.authed || st.closing || iseq <= st.pushed)
    return;
  if (iseq != st.pushed + 1 || st.window.size() >= st.ctx->cfg.push_window) {
    st.behind = true;
    refill(self);
    return;
  }
  push(self, iseq, m);
}

// Cumulative: everything <= iseq is acked for this device.
void on_ack(self_ptr self, uint64_t iseq) {
  auto& st = self->state;
  if (iseq <= st.acked)
    return;
  st.acked = iseq;
  while (!st.window.empty() && st.window.front().first <= iseq)
    st.window.pop_front();
  if (st.window.empty())
    st.window.shrink_to_fit();   // an idle connection keeps no window memory
  self->send(st.inbox, ack_atom::value, st.device, iseq);
  refill(self);
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.timer_armed = false;
  if (st.window.empty() || st.closing)
    return;
  if (st.acked > st.progress_mark) {
    st.attempts = 0;
  } else if (++st.attempts > st.ctx->cfg.max_retransmits) {
    close_with(self, 4002, "pushes not acknowledged");
    return;
  } else {
    for (const auto& entry : st.window)
      st.sink->send(entry.second, st.push_enc == encoding::msgpack);
    st.ctx->metrics->retransmits += st.window.size();
  }
  arm_timer(self);
}

// ---- requests

void handle_auth(self_ptr self, const json& f, req_id req, encoding enc) {
  auto& st = self->state;
  if (st.authed) {
    reply_error(self, req, {errc::bad_frame, "already authenticated"}, enc);
    return;
  }
  auto a = parse_auth(f);
  if (!a) {
    reply_error(self, req, a.error(), enc);
    return;
  }
  if (st.ctx->cfg.auth == "jwt") {
    auto sub = verify_jwt(a->token, st.ctx->cfg.jwt_secret, now_ms() / 1000);
    if (!sub) {
      reply_error(self, req, sub.error(), enc);
      return;
    }
    if (*sub != a->user) {
      reply_error(self, req, {errc::unauthorized, "token is for another user"}, enc);
      return;
    }
  }
  auto inbox = st.ctx->dir->user(a->user);
  // await: later frames of this connection wait until auth is settled.
  self->request(inbox, auth_timeout, register_atom::value, a->device,
                caf::actor_cast<caf::actor>(self))
    .await(
      [=](uint64_t head) {
        auto& st = self->state;
        st.authed = true;
        st.user = a->user;
        st.device = a->device;
        st.inbox = inbox;
        st.push_enc = enc;
        st.pushed = st.acked = head;
        self->monitor(inbox);
        reply(self, auth_ok_frame(req, st.user, st.device, head, st.ctx->cfg.node), enc);
        self->send(st.ctx->fanout, register_atom::value, st.user,
                   local_conn{caf::actor_cast<caf::actor>(self), st.sink, enc == encoding::msgpack});
      },
      [=](caf::error& e) { reply_error(self, req, to_failure(e), enc); });
}

// Whether the user may use `c`: dm by its id, groups and rooms by their
// stored membership.
std::optional<failure> check_access(const node_context* ctx, const conv_id& c,
                                   const std::string& user) {
  switch (c.kind) {
    case conv_kind::dm:
      if (!dm_member(c, user))
        return failure{errc::forbidden, "not a member of " + c.name};
      return std::nullopt;
    case conv_kind::group: {
      // Committed membership: what a reply already told the client.
      auto t = ctx->store->read();
      if (!ctx->store->conv(t, c.name))
        return failure{errc::not_found, "no such group " + c.name};
      if (!ctx->store->role(t, c.name, user))
        return failure{errc::forbidden, "not a member of " + c.name};
      return std::nullopt;
    }
    case conv_kind::room: {
      auto t = ctx->store->read();
      if (!ctx->store->role(t, c.name, user))
        return failure{errc::forbidden, "join " + c.name + " first"};
      return std::nullopt;
    }
  }
  return failure{errc::internal, "unknown conversation kind"};
}

// The conversation a frame names, if the user may use it; otherwise the
// error is answered and nullopt returned.
std::optional<conv_id> accessible(self_ptr self, const std::string& conv, req_id req,
                                  encoding enc) {
  auto c = parse_conv(conv);
  auto denied = c ? check_access(self->state.ctx, *c, self->state.user)
                  : std::optional<failure>{failure{errc::bad_frame, "malformed conv"}};
  if (denied) {
    reply_error(self, req, *denied, enc);
    return std::nullopt;
  }
  return c;
}

void handle_send(self_ptr self, const std::string& conv, std::vector<send_item> items,
                 bool batch, req_id req, encoding enc) {
  auto& st = self->state;
  // A group's or room's own actor checks membership in mailbox order, so
  // that a send pipelined behind group_create, group_add or join is judged
  // after them.
  auto c = parse_conv(conv);
  if (!c || c->kind == conv_kind::dm)
    c = accessible(self, conv, req, enc);
  if (!c)
    return;
  std::string cmid = batch ? std::string{} : items.front().cmid;
  self->request(st.ctx->dir->conversation(*c), send_timeout, send_atom::value, st.user,
                st.device, std::move(items))
    .then(
      [=](send_ack& a) {
        if (batch)
          reply(self, ack_batch_frame(req, a.conv, a.first_seq, a.last_seq, a.mids, a.dup), enc);
        else
          reply_bytes(self,
                      encode_ack(req, cmid, a.conv, a.first_seq, a.mids.front(), a.ts, a.dup, enc),
                      enc);
      },
      [=](caf::error& e) { reply_error(self, req, to_failure(e), enc); });
}

void handle_sync(self_ptr self, const sync_req& r, req_id req, encoding enc) {
  auto& st = self->state;
  on_ack(self, r.after);   // asking for the next page acks the previous
  auto t = st.ctx->store->read();
  auto page = st.ctx->store->inbox_after(t, st.user, r.after, r.limit);
  reply(self, sync_result_frame(req, page.items, page.more), enc);
}

void handle_history(self_ptr self, const history_req& r, req_id req, encoding enc) {
  auto& st = self->state;
  if (!accessible(self, r.conv, req, enc))
    return;
  auto t = st.ctx->store->read();
  auto page = r.before ? st.ctx->store->messages_before(t, r.conv, *r.before, r.limit)
                       : st.ctx->store->messages_after(t, r.conv, r.after.value_or(0), r.limit);
  reply(self, history_result_frame(req, r.conv, page.items, page.more), enc);
}

// An event for the client (read on another device, receipt, typing,
// presence), in the encoding of its auth frame.
void event(self_ptr self, const json& frame) {
  auto& st = self->state;
  if (st.authed && !st.closing)
    reply(self, frame, st.push_enc);
}

void handle_read(self_ptr self, const read_req& r, req_id req, encoding enc) {
  auto& st = self->state;
  if (!accessible(self, r.conv, req, enc))
    return;
  self->send(st.inbox, read_atom::value, r.conv, r.seq, st.device);
}

void handle_unread(self_ptr self, req_id req, encoding enc) {
  self->request(self->state.inbox, send_timeout, unread_atom::value)
    .then([=](std::vector<unread_entry>& convs) { reply(self, unread_result_frame(req, convs), enc); },
          [=](caf::error& e) { reply_error(self, req, to_failure(e), enc); });
}

void handle_typing(self_ptr self, const conv_req& r, req_id req, encoding enc) {
  auto& st = self->state;
  auto c = accessible(self, r.conv, req, enc);
  if (!c)
    return;
  self->send(st.ctx->dir->conversation(*c), typing_atom::value, st.user);
}

void handle_group_change(self_ptr self, const std::string& op, members_req& r, req_id req,
                         encoding enc) {
  auto& st = self->state;
  self->request(st.ctx->dir->conversation(*parse_conv(r.conv)), send_timeout,
                group_atom::value, op, st.user, std::move(r.members))
    .then([=](ok_atom) { reply(self, ok_frame(req), enc); },
          [=](caf::error& e) { reply_error(self, req, to_failure(e), enc); });
}

void handle_group_info(self_ptr self, const conv_req& r, req_id req, encoding enc) {
  auto& st = self->state;
  auto c = accessible(self, r.conv, req, enc);
  if (!c)
    return;
  if (c->kind != conv_kind::group) {
    reply_error(self, req, {errc::bad_frame, "group_info needs a g: conversation"}, enc);
    return;
  }
  auto t = st.ctx->store->read();
  std::vector<std::string> members;
  std::string owner;
  for (auto& [user, role] : st.ctx->store->members(t, r.conv)) {
    if (role == "owner")
      owner = user;
    members.push_back(std::move(user));
  }
  auto last = st.ctx->store->conv(t, r.conv).value_or(storage::conv_meta{}).last_seq;
  auto mode = members.size() > st.ctx->cfg.large_group ? "timeline" : "inbox";
  reply(self, group_info_result_frame(req, r.conv, members, owner, mode, last), enc);
}

void handle_room(self_ptr self, const std::string& op, const conv_req& r, req_id req,
                 encoding enc) {
  auto& st = self->state;
  auto c = parse_conv(r.conv);
  if (!c || c->kind != conv_kind::room) {
    reply_error(self, req, {errc::bad_frame, op + " needs an r: conversation"}, enc);
    return;
  }
  self->request(st.ctx->dir->conversation(*c), send_timeout, group_atom::value, op, st.user,
                std::vector<std::string>{})
    .then([=](ok_atom) { reply(self, ok_frame(req), enc); },
          [=](caf::error& e) { reply_error(self, req, to_failure(e), enc); });
}

// A normal-priority timeline push the fanout actor held back because this
// connection's outbound queue was long: it becomes a `notify` (the client
// pulls with history). Sent live now, it would land behind the pushes the
// fanout actor has sent straight to the socket since, out of order. prio 1
// is never held back; the net layer closes a connection whose queue stays
// too long.
void on_held_back(self_ptr self, const std::string& conv, uint64_t seq) {
  auto& st = self->state;
  if (!st.authed || st.closing)
    return;
  auto& pending = st.pending_notify[conv];
  pending = std::max(pending, seq);
  if (!st.notify_timer_armed) {
    st.notify_timer_armed = true;
    self->delayed_send(self, notify_check, flush_atom::value);
  }
}

void flush_notifies(self_ptr self) {
  auto& st = self->state;
  st.notify_timer_armed = false;
  if (st.closing || st.pending_notify.empty())
    return;
  if (st.sink->backlog() > st.ctx->cfg.slow_queue) {
    st.notify_timer_armed = true;
    self->delayed_send(self, notify_check, flush_atom::value);
    return;
  }
  for (const auto& [conv, seq] : st.pending_notify)
    event(self, notify_frame(conv, seq));
  st.pending_notify.clear();
}

// The current state of each user now, their changes later.
void subscribe_presence(self_ptr self, const std::string& user) {
  auto& st = self->state;
  auto target = st.ctx->dir->user(user);
  if (!target)
    return;
  if (st.watched.emplace(target.address(), user).second)
    self->monitor(target);
  self->request(target, send_timeout, presence_atom::value, caf::actor_cast<caf::actor>(self))
    .then([=](bool online) { event(self, presence_frame(user, online)); },
          [](caf::error&) {});
}

void handle_presence_sub(self_ptr self, const presence_sub_req& r) {
  for (const auto& user : r.users)
    subscribe_presence(self, user);
}

// The user actor is gone (a crash): register with its successor, which
// rebuilt its state from LMDB, and push whatever this connection missed.
void reattach(self_ptr self) {
  auto& st = self->state;
  st.inbox = st.ctx->dir->user(st.user);
  if (!st.inbox)
    return;   // shutting down
  self->monitor(st.inbox);
  self->request(st.inbox, send_timeout, register_atom::value, st.device,
                caf::actor_cast<caf::actor>(self))
    .then(
      [=](uint64_t head) {
        auto& st = self->state;
        if (head > st.pushed) {
          st.behind = true;
          refill(self);
        }
      },
      [=](caf::error&) { close_with(self, 1011, "inbox unavailable"); });
}

void on_down(self_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (st.closing)
    return;
  if (st.inbox && dm.source == st.inbox.address()) {
    reattach(self);
    return;
  }
  if (auto i = st.watched.find(dm.source); i != st.watched.end()) {
    auto user = i->second;
    st.watched.erase(i);
    subscribe_presence(self, user);
  }
}

// Fault injection for tests (--fault-injection): kills a user or
// conversation actor, or this connection's own, the way a crash would.
void handle_crash(self_ptr self, const json& f, req_id req, encoding enc) {
  auto& st = self->state;
  auto kind = f.value("kind", "");
  auto id = f.value("id", "");
  if (kind == "conn") {   // no reply: the actor is gone
    self->quit(caf::exit_reason::kill);
    return;
  }
  caf::actor target;
  if (kind == "user" && valid_user(id))
    target = st.ctx->dir->user(id);
  else if (auto c = parse_conv(id); kind == "conv" && c)
    target = st.ctx->dir->conversation(*c);
  if (!target) {
    reply_error(self, req, {errc::bad_frame, "kind must be conn, or user or conv with a valid id"}, enc);
    return;
  }
  caf::anon_send_exit(target, caf::exit_reason::kill);
  reply(self, ok_frame(req), enc);
}

template <class Parsed, class F>
void with_parsed(self_ptr self, Parsed parsed, req_id req, encoding enc, F f) {
  if (!parsed)
    reply_error(self, req, parsed.error(), enc);
  else
    f(*parsed);
}

void handle_frame(self_ptr self, const std::string& data, bool binary) {
  auto& st = self->state;
  st.ctx->metrics->frames_in++;
  if (st.closing)
    return;
  auto enc = binary ? encoding::msgpack : encoding::json;
  if (data.size() > st.ctx->cfg.max_frame) {
    reply_error(self, std::nullopt,
                {errc::too_large, "frame over " + std::to_string(st.ctx->cfg.max_frame) + " bytes"},
                enc);
    return;
  }
  auto decoded = decode_frame(data, enc);
  if (!decoded) {
    reply_error(self, std::nullopt, decoded.error(), enc);
    return;
  }
  const json& f = *decoded;
  auto req = request_id(f);
  const auto& t = f["t"].get_ref<const std::string&>();
  auto before = st.bad_streak;
  if (t == "ping") {
    reply(self, pong_frame(req), enc);
  } else if (t == "auth") {
    handle_auth(self, f, req, enc);
  } else if (!st.authed) {
    reply_error(self, req, {errc::unauthorized, "authenticate first"}, enc);
  } else if (t == "send") {
    with_parsed(self, parse_send(f), req, enc, [&](send_req& r) {
      handle_send(self, r.conv, {std::move(r.item)}, false, req, enc);
    });
  } else if (t == "send_batch") {
    with_parsed(self, parse_send_batch(f), req, enc, [&](send_batch_req& r) {
      handle_send(self, r.conv, std::move(r.items), true, req, enc);
    });
  } else if (t == "ack") {
    with_parsed(self, parse_ack(f), req, enc, [&](ack_req& r) { on_ack(self, r.iseq); });
  } else if (t == "sync") {
    with_parsed(self, parse_sync(f), req, enc,
                [&](sync_req& r) { handle_sync(self, r, req, enc); });
  } else if (t == "history") {
    with_parsed(self, parse_history(f), req, enc,
                [&](history_req& r) { handle_history(self, r, req, enc); });
  } else if (t == "read") {
    with_parsed(self, parse_read(f), req, enc,
                [&](read_req& r) { handle_read(self, r, req, enc); });
  } else if (t == "unread") {
    handle_unread(self, req, enc);
  } else if (t == "typing") {
    with_parsed(self, parse_conv_req(f), req, enc,
                [&](conv_req& r) { handle_typing(self, r, req, enc); });
  } else if (t == "presence_sub") {
    with_parsed(self, parse_presence_sub(f), req, enc,
                [&](presence_sub_req& r) { handle_presence_sub(self, r); });
  } else if (t == "group_create" || t == "group_add" || t == "group_remove") {
    with_parsed(self, parse_members(f), req, enc, [&](members_req& r) {
      handle_group_change(self, t.substr(6), r, req, enc);
    });
  } else if (t == "group_info") {
    with_parsed(self, parse_conv_req(f), req, enc,
                [&](conv_req& r) { handle_group_info(self, r, req, enc); });
  } else if (t == "_crash" && st.ctx->cfg.fault_injection) {
    handle_crash(self, f, req, enc);
  } else if (t == "join" || t == "leave") {
    with_parsed(self, parse_conv_req(f), req, enc,
                [&](conv_req& r) { handle_room(self, t, r, req, enc); });
  } else {
    reply_error(self, req, {errc::unknown_type, "unknown frame type '" + t + "'"}, enc);
  }
  if (st.bad_streak == before)
    st.bad_streak = 0;   // a good frame ends the streak
}

} // namespace

caf::behavior connection_actor(self_ptr self, const node_context* ctx,
                               std::shared_ptr<frame_sink> sink) {
  self->state.ctx = ctx;
  self->state.sink = std::move(sink);
  ctx->metrics->connections++;
  ctx->metrics->connections_total++;
  self->attach_functor([stats = ctx->metrics] { stats->connections--; });
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [=](frame_atom, std::string& data, bool binary) { handle_frame(self, data, binary); },
    [=](push_atom, uint64_t iseq, message& m) { on_push(self, iseq, m); },
    [=](tick_atom) { on_tick(self); },
    [=](read_atom, std::string& conv, uint64_t seq) { event(self, read_frame(conv, seq)); },
    [=](receipt_atom, std::string& conv, std::string& user, uint64_t seq) {
      event(self, receipt_frame(conv, user, seq));
    },
    [=](typing_atom, std::string& conv, std::string& user) {
      event(self, typing_frame(conv, user));
    },
    [=](presence_atom, std::string& user, bool online) {
      event(self, presence_frame(user, online));
    },
    [=](timeline_atom, std::string& conv, uint64_t seq) { on_held_back(self, conv, seq); },
    [=](flush_atom) { flush_notifies(self); },
    [=](kick_atom, uint16_t code) {
      close_with(self, code, "replaced by a newer connection of this device");
    },
    [=](closed_atom) {
      auto& st = self->state;
      if (st.inbox)
        self->send(st.inbox, unregister_atom::value, st.device, caf::actor_cast<caf::actor>(self));
      self->quit();
    },
  };
}

} // namespace imengine
