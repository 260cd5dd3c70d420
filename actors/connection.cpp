#include "actors/connection.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "actors/plugins.hpp"
#include "engine/frame_writer.hpp"
#include "engine/jwt.hpp"
#include "engine/rules.hpp"

#include <spdlog/spdlog.h>

namespace imengine {

namespace {

using self_ptr = connection_actor::stateful_pointer<connection_state>;

constexpr auto auth_timeout = std::chrono::seconds(10);
constexpr auto send_timeout = std::chrono::seconds(30);
constexpr unsigned max_bad_streak = 20;
constexpr auto notify_check = std::chrono::milliseconds(50);

const size_t ack_slot = server_frame_slot("ack");
const size_t msg_slot = server_frame_slot("msg");

// Every frame to the client goes through here (pushes through push/on_tick):
// counted by type and bytes.
void send_bytes(self_ptr self, std::shared_ptr<const std::string> bytes, bool binary,
                size_t slot) {
  auto& st = self->state;
  st.ctx->metrics->frames_out.add(slot);
  st.ctx->metrics->bytes_out += bytes->size();
  st.sink->send(std::move(bytes), binary);
}

void reply_bytes(self_ptr self, std::string bytes, encoding enc, size_t slot) {
  send_bytes(self, std::make_shared<const std::string>(std::move(bytes)),
             enc == encoding::msgpack, slot);
}

void reply(self_ptr self, const json& frame, encoding enc) {
  auto t = frame.find("t");
  auto slot = t != frame.end() && t->is_string() ? server_frame_slot(t->get_ref<const std::string&>())
                                                 : server_frame_types().size();
  reply_bytes(self, encode_frame(frame, enc), enc, slot);
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
  st.ctx->metrics->count_error(f.code);
  if (f.code == errc::internal || f.code == errc::storage)
    spdlog::warn("answered {} to {}: {}", to_string(f.code), st.authed ? st.user : "(no auth)",
                 f.msg);
  if (f.code == errc::bad_frame)
    st.ctx->metrics->bad_frames++;
  switch (f.code) {
    case errc::bad_frame:
    case errc::unknown_type:
    case errc::too_large:
    case errc::unauthorized:
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
                     retransmit_atom::value);
}

void push(self_ptr self, uint64_t iseq, const message& m) {
  auto& st = self->state;
  auto bytes = std::make_shared<const std::string>(encode_msg(m, iseq, st.push_enc));
  st.window.emplace_back(iseq, bytes);
  st.pushed = iseq;
  send_bytes(self, std::move(bytes), st.push_enc == encoding::msgpack, msg_slot);
  st.ctx->metrics->pushes++;
  arm_timer(self);
}

// After pushes were skipped for a full window: fetch what the inbox holds
// past the last push, as far as the window has room. One page at a time;
// pushes that arrive meanwhile go out directly when they are next in line.
void refill(self_ptr self) {
  auto& st = self->state;
  if (!st.behind || st.closing || st.refilling || !st.inbox)
    return;
  auto room = st.ctx->cfg.push_window - std::min<size_t>(st.window.size(), st.ctx->cfg.push_window);
  if (room == 0)
    return;
  st.behind = false;
  st.refilling = true;
  ask(self, st.ctx, st.inbox, send_timeout, sync_atom::value, st.pushed,
      static_cast<uint32_t>(room))
    .then(
      [=](inbox_page& page) {
        auto& st = self->state;
        st.refilling = false;
        if (st.closing)
          return;
        for (const auto& [iseq, m] : page.items) {
          if (iseq <= st.pushed)
            continue;   // pushed directly while the page was on its way
          if (iseq != st.pushed + 1 || st.window.size() >= st.ctx->cfg.push_window) {
            st.behind = true;
            break;
          }
          push(self, iseq, m);
        }
        st.behind = st.behind || page.more;
        refill(self);
      },
      [=](caf::error&) {
        // The inbox is gone: reattaching to its successor refills.
        self->state.refilling = false;
        self->state.behind = true;
      });
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
  tell(self, st.ctx, st.inbox, ack_atom::value, st.device, iseq);
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
      send_bytes(self, entry.second, st.push_enc == encoding::msgpack, msg_slot);
    st.ctx->metrics->retransmits += st.window.size();
  }
  arm_timer(self);
}

// ---- requests. Each handler takes its typed, parsed frame; the table at
// the end maps a frame type to its handler.

// What a handler needs besides its frame: who asked, how to answer.
struct origin {
  req_id req;
  encoding enc;
  std::chrono::steady_clock::time_point arrived;   // for imengine_ack_seconds
};

void on_ping(self_ptr self, const json&, origin o) {
  reply(self, pong_frame(o.req), o.enc);
}

void register_device(self_ptr self, const user_actor& inbox, const auth_req& a, origin o);

// Tells the plugins' session hooks that this device connected or left.
template <class Atom>
void notify_session(self_ptr self, Atom what) {
  auto& st = self->state;
  if (!st.ctx->plugins)
    return;
  for (const auto& slot : st.ctx->plugins->session)
    if (hook_takes_user(slot->options(), st.user))
      observe(self, slot, what, st.user, st.device);
}

// With --auth=jwt, the token's expiry; nullopt after answering why the
// token is refused.
std::optional<int64_t> token_expiry(self_ptr self, const auth_req& a, origin o) {
  auto& cfg = self->state.ctx->cfg;
  if (cfg.auth != "jwt")
    return INT64_MAX;
  auto claims = verify_jwt(a.token, cfg.jwt_secret, now_ms() / 1000,
                           static_cast<int64_t>(std::min<uint64_t>(cfg.jwt_max_ttl, INT64_MAX)));
  if (!claims) {
    spdlog::info("login of {} refused: {}", a.user, claims.error().msg);
    reply_error(self, o.req, claims.error(), o.enc);
    return std::nullopt;
  }
  if (claims->sub != a.user) {
    spdlog::info("login of {} refused: token is for another user", a.user);
    reply_error(self, o.req, {errc::unauthorized, "token is for another user"}, o.enc);
    return std::nullopt;
  }
  return claims->exp_s;
}

// A session lives as long as its token: closed with 4005 when it expires,
// unless a re-auth brought a later expiry first. A timer waits a day at
// most (an exp years ahead is checked again then); a fired timer with a
// later one pending leaves the check to that one.
constexpr int64_t max_expiry_wait_ms = 86'400'000;

void start_expiry_timer(self_ptr self) {
  auto& st = self->state;
  auto left_ms = std::clamp<int64_t>(st.token_exp_s - now_ms() / 1000, 0, max_expiry_wait_ms / 1000)
                 * 1000;
  ++st.expiry_timers;
  self->delayed_send(self, std::chrono::milliseconds(left_ms), token_expiry_atom::value);
}

void arm_expiry(self_ptr self, int64_t exp_s) {
  self->state.token_exp_s = exp_s;
  if (exp_s != INT64_MAX)
    start_expiry_timer(self);
}

void on_token_expiry(self_ptr self) {
  auto& st = self->state;
  --st.expiry_timers;
  if (st.token_exp_s <= now_ms() / 1000)
    close_with(self, 4005, "token expired");
  else if (st.expiry_timers == 0)
    start_expiry_timer(self);
}

// A fresh token for the same user and device on an open session: it
// moves the expiry; nothing else changes.
void reauth(self_ptr self, auth_req& a, origin o) {
  auto& st = self->state;
  if (a.user != st.user || a.device != st.device) {
    reply_error(self, o.req,
                {errc::bad_frame, "already authenticated as " + st.user + "/" + st.device}, o.enc);
    return;
  }
  auto exp = token_expiry(self, a, o);
  if (!exp)
    return;
  arm_expiry(self, *exp);
  reply(self, auth_ok_frame(o.req, st.user, st.device, st.pushed, st.ctx->cfg.node), o.enc);
}

void on_auth(self_ptr self, auth_req& a, origin o) {
  auto& st = self->state;
  if (st.authed) {
    reauth(self, a, o);
    return;
  }
  if (reserved_user(a.user)) {
    reply_error(self, o.req, {errc::forbidden, a.user + " is reserved for the server"}, o.enc);
    return;
  }
  auto exp = token_expiry(self, a, o);
  if (!exp)
    return;
  // await: later frames of this connection wait until auth is settled.
  with_user<true>(
    self, st.ctx, nullptr, a.user,
    [=](const user_actor& inbox) {
      arm_expiry(self, *exp);
      register_device(self, inbox, a, o);
    },
    [=](const caf::error& e) { reply_error(self, o.req, to_failure(e), o.enc); });
}

void register_device(self_ptr self, const user_actor& inbox, const auth_req& a, origin o) {
  ask(self, self->state.ctx, inbox, auth_timeout, register_atom::value, a.device,
      caf::actor_cast<connection_actor>(self))
    .await(
      [=](uint64_t head) {
        auto& st = self->state;
        st.authed = true;
        st.user = a.user;
        st.device = a.device;
        st.inbox = inbox;
        st.push_enc = o.enc;
        st.pushed = st.acked = head;
        self->monitor(inbox);
        reply(self, auth_ok_frame(o.req, st.user, st.device, head, st.ctx->cfg.node), o.enc);
        spdlog::info("{}/{} logged in", st.user, st.device);
        self->send(st.ctx->fanout, online_atom::value, st.user,
                   local_conn{caf::actor_cast<connection_actor>(self), st.sink,
                              o.enc == encoding::msgpack});
        notify_session(self, plugin::connect_atom::value);
      },
      [=](caf::error& e) { reply_error(self, o.req, to_failure(e), o.enc); });
}

// Answers a request's failure with its error.
auto answer_error(self_ptr self, origin o) {
  return [=](const caf::error& e) { reply_error(self, o.req, to_failure(e), o.enc); };
}

// The conversation a frame names, or nullopt after answering bad_frame.
std::optional<conv_id> conv_of(self_ptr self, const std::string& conv, origin o) {
  auto c = parse_conv(conv);
  if (!c)
    reply_error(self, o.req, {errc::bad_frame, "malformed conv"}, o.enc);
  return c;
}

// A dm's members follow from its id: refused here, without a hop.
bool dm_refused(self_ptr self, const conv_id& c, origin o) {
  if (c.kind != conv_kind::dm || dm_member(c, self->state.user))
    return false;
  reply_error(self, o.req, {errc::forbidden, "not a member of " + c.name}, o.enc);
  return true;
}

// Hands the actor of `conv` to `use`, or answers why it cannot. A dm's
// membership is checked here; a group's or room's own actor checks it in
// mailbox order, so that a frame pipelined behind group_create, group_add
// or join is judged after them.
template <class F>
void with_conv_of(self_ptr self, const std::string& conv, origin o, F use) {
  auto c = conv_of(self, conv, o);
  if (!c || dm_refused(self, *c, o))
    return;
  with_conversation(self, self->state.ctx, &self->state.convs, *c, std::move(use),
                    answer_error(self, o));
}

// A send or amend was answered; the last one a drain waited for closes.
void answered(self_ptr self) {
  auto& st = self->state;
  if (--st.in_flight == 0 && st.draining)
    close_with(self, 1001, "going away");
}

void on_drain(self_ptr self) {
  auto& st = self->state;
  st.draining = true;
  if (st.in_flight == 0)
    close_with(self, 1001, "going away");
}

// --rate-msgs: a token bucket of --rate-burst messages per connection,
// refilled at rate-msgs per second. Over it, the frame is answered
// rate_limited and nothing is stored.
bool within_rate(self_ptr self, size_t n, origin o) {
  auto& st = self->state;
  const auto& cfg = st.ctx->cfg;
  if (cfg.rate_msgs == 0)
    return true;
  auto now = std::chrono::steady_clock::now();
  if (st.rate_at == std::chrono::steady_clock::time_point{}) {
    st.rate_tokens = cfg.rate_burst;
  } else {
    std::chrono::duration<double> elapsed = now - st.rate_at;
    st.rate_tokens = std::min<double>(cfg.rate_burst,
                                      st.rate_tokens + elapsed.count() * cfg.rate_msgs);
  }
  st.rate_at = now;
  if (st.rate_tokens < static_cast<double>(n)) {
    reply_error(self, o.req,
                {errc::rate_limited, "over " + std::to_string(cfg.rate_msgs)
                                       + " messages per second (burst "
                                       + std::to_string(cfg.rate_burst) + ")"},
                o.enc);
    return false;
  }
  st.rate_tokens -= static_cast<double>(n);
  return true;
}

// ---- deadlines of sends to this node's conversations

// Starts waiting for a local send's answer; its number, for settle_send.
uint64_t await_send(self_ptr self, const origin& o) {
  auto& st = self->state;
  auto timeout = std::chrono::milliseconds(st.ctx->cfg.send_timeout_ms);
  auto id = ++st.last_send;
  st.sends.emplace_hint(st.sends.end(), id,
                        connection_state::send_wait{std::chrono::steady_clock::now() + timeout,
                                                    o.req, o.enc});
  if (!st.send_timer_armed) {
    st.send_timer_armed = true;
    self->delayed_send(self, timeout, send_deadline_atom::value);
  }
  return id;
}

// Whether send `id`'s answer is still awaited (0: CAF's clock keeps its
// deadline); false once on_send_deadline answered it.
bool settle_send(self_ptr self, uint64_t id) {
  return id == 0 || self->state.sends.erase(id) > 0;
}

// Answers the sends past their deadline as CAF's timeout would have.
void on_send_deadline(self_ptr self) {
  auto& st = self->state;
  st.send_timer_armed = false;
  auto now = std::chrono::steady_clock::now();
  while (!st.sends.empty() && st.sends.begin()->second.deadline <= now) {
    auto w = st.sends.begin()->second;
    st.sends.erase(st.sends.begin());
    reply_error(self, w.req, to_failure(caf::sec::request_timeout), w.enc);
    answered(self);
  }
  if (!st.sends.empty()) {
    st.send_timer_armed = true;
    self->delayed_send(self, st.sends.begin()->second.deadline - now, send_deadline_atom::value);
  }
}

void send_items(self_ptr self, const std::string& conv, std::vector<send_item> items,
                bool batch, origin o) {
  if (!within_rate(self, items.size(), o))
    return;
  std::string cmid = batch ? std::string{} : items.front().cmid;
  auto acked = [=](send_ack& a) {
    if (batch)
      reply(self, ack_batch_frame(o.req, a.conv, a.first_seq, a.last_seq, a.mids, a.dup), o.enc);
    else
      reply_bytes(self,
                  encode_ack(o.req, cmid, a.conv, a.first_seq, a.mids.front(), a.ts, a.dup, o.enc),
                  o.enc, ack_slot);
  };
  with_conv_of(self, conv, o, [=](const conversation_actor& h) mutable {
    auto& st = self->state;
    auto start = std::chrono::steady_clock::now();
    ++st.in_flight;
    // On this node the deadline is ours (await_send); across nodes CAF's
    // clock keeps it (remote_timeout), as for every other request.
    uint64_t id = h && h.node() == self->node() ? await_send(self, o) : 0;
    auto ok = [=](send_ack& a) {
      if (!settle_send(self, id))
        return;   // answered `unavailable` at its deadline
      observe_request(self, self->state.ctx, h, start);
      acked(a);
      std::chrono::duration<double> took = std::chrono::steady_clock::now() - o.arrived;
      self->state.ctx->metrics->ack_seconds.observe(took.count());
      answered(self);
    };
    auto failed = [=](const caf::error& e) {
      if (!settle_send(self, id))
        return;
      reply_error(self, o.req, to_failure(e), o.enc);
      answered(self);
    };
    if (id != 0)
      self->request(h, caf::infinite, send_atom::value, st.user, st.device, std::move(items))
        .then(ok, failed);
    else
      ask(self, st.ctx, h, send_timeout, send_atom::value, st.user, st.device, std::move(items))
        .then(ok, failed);
  });
}

// recall, edit: answered `ok` with the seq of the amending message.
template <amend_op Op>
void on_amend(self_ptr self, amend_req& r, origin o) {
  if (!within_rate(self, 1, o))
    return;
  with_conv_of(self, r.conv, o, [=](const conversation_actor& h) {
    auto& st = self->state;
    ++st.in_flight;
    ask(self, st.ctx, h, send_timeout, amend_atom::value, Op, st.user, st.device, r.seq, r.body)
      .then(
        [=](send_ack& a) {
          reply(self, ok_frame(o.req, a.first_seq), o.enc);
          answered(self);
        },
        [=](const caf::error& e) {
          reply_error(self, o.req, to_failure(e), o.enc);
          answered(self);
        });
  });
}

void on_send(self_ptr self, send_req& r, origin o) {
  send_items(self, r.conv, {std::move(r.item)}, false, o);
}

void on_send_batch(self_ptr self, send_batch_req& r, origin o) {
  send_items(self, r.conv, std::move(r.items), true, o);
}

void on_client_ack(self_ptr self, ack_req& r, origin) {
  on_ack(self, r.iseq);
}

// The user's inbox, or false after answering that its node is down.
bool inbox_up(self_ptr self, origin o) {
  if (self->state.inbox)
    return true;
  reply_error(self, o.req,
              {errc::unavailable, "the node of " + self->state.user + " is unavailable"}, o.enc);
  return false;
}

void on_sync(self_ptr self, sync_req& r, origin o) {
  auto& st = self->state;
  if (!inbox_up(self, o))
    return;
  on_ack(self, r.after);   // asking for the next page acks the previous
  ask(self, st.ctx, st.inbox, send_timeout, sync_atom::value, r.after, r.limit)
    .then([=](inbox_page& page) { reply(self, sync_result_frame(o.req, page.items, page.more), o.enc); },
          answer_error(self, o));
}

// The reader of the node that owns `conv`; an invalid handle while that
// node is down (a request to it fails at once).
reader_actor reader_of(self_ptr self, const std::string& conv) {
  return self->state.ctx->dir->reader_of(conv);
}

void on_history(self_ptr self, history_req& r, origin o) {
  auto& st = self->state;
  // Neither bound: the newest page, descending.
  auto newest = !r.after && !r.before;
  history_query q{r.conv, r.after.value_or(0), newest ? UINT64_MAX : r.before.value_or(0),
                  newest || r.before.has_value(), r.limit};
  ask(self, st.ctx, reader_of(self, r.conv), send_timeout, history_atom::value, st.user,
      std::move(q))
    .then(
      [=](message_page& page) {
        reply(self, history_result_frame(o.req, r.conv, page.items, page.more), o.enc);
      },
      answer_error(self, o));
}

// An event for the client (read on another device, receipt, typing,
// presence), in the encoding of its auth frame.
void event(self_ptr self, const json& frame) {
  auto& st = self->state;
  if (st.authed && !st.closing)
    reply(self, frame, st.push_enc);
}

// No reply unless it fails. The reader takes this connection's read and
// later unread in order, so the unread counts the read.
void on_read(self_ptr self, read_req& r, origin o) {
  auto& st = self->state;
  ask(self, st.ctx, reader_of(self, r.conv), send_timeout, read_atom::value, st.user, r.conv,
      r.seq, st.device)
    .then([](ok_atom) {}, answer_error(self, o));
}

// Every node's reader counts the conversations it holds.
void on_unread(self_ptr self, const json&, origin o) {
  auto done = [=](std::vector<std::vector<unread_entry>>& answers) {
    std::vector<unread_entry> convs;
    for (auto& a : answers)
      convs.insert(convs.end(), a.begin(), a.end());
    std::sort(convs.begin(), convs.end(),
              [](const auto& a, const auto& b) { return a.conv < b.conv; });
    reply(self, unread_result_frame(o.req, convs), o.enc);
  };
  ask_every_reader<std::vector<unread_entry>>(self, self->state.ctx, send_timeout, done,
                                              answer_error(self, o), unread_atom::value,
                                              self->state.user);
}

// Every node's reader gives its page; merged, they are the list's.
void on_convs(self_ptr self, convs_req& r, origin o) {
  auto q = query_of(r);
  auto done = [=](std::vector<conv_page>& pages) {
    auto page = merge_pages(std::move(pages), q.limit);
    reply(self, convs_result_frame(o.req, page.rows, page.more), o.enc);
  };
  ask_every_reader<conv_page>(self, self->state.ctx, send_timeout, done, answer_error(self, o),
                              convs_atom::value, self->state.user, q);
}

// The conversation's reader keeps the flag with the user's read position.
void on_mute(self_ptr self, mute_req& r, origin o) {
  auto& st = self->state;
  ask(self, st.ctx, reader_of(self, r.conv), send_timeout, mute_atom::value, st.user, r.conv,
      r.on, st.device)
    .then([=](ok_atom) { reply(self, ok_frame(o.req), o.enc); }, answer_error(self, o));
}

void on_typing(self_ptr self, conv_req& r, origin o) {
  with_conv_of(self, r.conv, o, [=](const conversation_actor& h) {
    ask(self, self->state.ctx, h, send_timeout, typing_atom::value, self->state.user)
      .then([](ok_atom) {}, answer_error(self, o));
  });
}

void change_group(self_ptr self, const conv_id& c, group_op op, std::vector<std::string> users,
                  origin o) {
  auto& st = self->state;
  with_conversation(
    self, st.ctx, &st.convs, c,
    [=](const conversation_actor& h) {
      ask(self, self->state.ctx, h, send_timeout, group_atom::value, op, self->state.user, users)
        .then([=](ok_atom) { reply(self, ok_frame(o.req), o.enc); }, answer_error(self, o));
    },
    answer_error(self, o));
}

// group_create, group_add, group_remove (parse_members checks the g: id)
template <group_op Op>
void on_group(self_ptr self, members_req& r, origin o) {
  change_group(self, *parse_conv(r.conv), Op, std::move(r.members), o);
}

// join, leave
template <group_op Op>
void on_room(self_ptr self, conv_req& r, origin o) {
  auto c = parse_conv(r.conv);
  if (!c || c->kind != conv_kind::room) {
    reply_error(self, o.req,
                {errc::bad_frame, std::string(Op == group_op::join ? "join" : "leave")
                                    + " needs an r: conversation"},
                o.enc);
    return;
  }
  change_group(self, *c, Op, {}, o);
}

void on_group_info(self_ptr self, conv_req& r, origin o) {
  auto& st = self->state;
  ask(self, st.ctx, reader_of(self, r.conv), send_timeout, info_atom::value, st.user, r.conv)
    .then(
      [=](group_info& g) {
        reply(self,
              group_info_result_frame(o.req, r.conv, g.members, g.owner, to_string(g.mode),
                                      g.last_seq),
              o.enc);
      },
      answer_error(self, o));
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
    self->delayed_send(self, notify_check, notify_atom::value);
  }
}

void flush_notifies(self_ptr self) {
  auto& st = self->state;
  st.notify_timer_armed = false;
  if (st.closing || st.pending_notify.empty())
    return;
  if (st.sink->backlog() > st.ctx->cfg.slow_queue) {
    st.notify_timer_armed = true;
    self->delayed_send(self, notify_check, notify_atom::value);
    return;
  }
  for (const auto& [conv, seq] : st.pending_notify)
    event(self, notify_frame(conv, seq));
  st.pending_notify.clear();
}

// The current state of each user now, their changes later.
void arm_rejoin(self_ptr self);

void subscribe_presence(self_ptr self, const std::string& user) {
  auto& st = self->state;
  auto later = [=](const caf::error&) {   // the user's node is down: once it is back
    self->state.unwatched.push_back(user);
    arm_rejoin(self);
  };
  with_user(
    self, st.ctx, &st.users, user,
    [=](const user_actor& target) {
      auto& st = self->state;
      if (st.watched.emplace(target.address(), user).second)
        self->monitor(target);
      ask(self, st.ctx, target, send_timeout, watch_atom::value,
          caf::actor_cast<connection_actor>(self))
        .then([=](bool online) { event(self, presence_frame(user, online)); }, later);
    },
    later);
}

// Presence is for the people a user talks to: users who share a dm or a
// group with the subscriber are watched; anyone else is reported offline
// once and never watched, so a stranger's state leaks nothing and a name
// without data spawns nothing. Every node's reader answers for what it
// holds.
void on_presence_sub(self_ptr self, presence_sub_req& r, origin o) {
  auto& st = self->state;
  auto cap = st.ctx->cfg.max_watch;
  if (st.watched.size() + st.unwatched.size() + r.users.size() > cap) {
    reply_error(self, o.req,
                {errc::rate_limited, "a connection watches at most " + std::to_string(cap)
                                       + " users (--max-watch)"},
                o.enc);
    return;
  }
  auto users = std::move(r.users);
  auto done = [=](std::vector<std::vector<std::string>>& answers) {
    std::unordered_set<std::string> shared;
    for (auto& a : answers)
      shared.insert(a.begin(), a.end());
    for (const auto& user : users) {
      if (shared.count(user) || user == self->state.user)
        subscribe_presence(self, user);
      else
        event(self, presence_frame(user, false));
    }
  };
  ask_every_reader<std::vector<std::string>>(self, st.ctx, send_timeout, done,
                                             answer_error(self, o), sharing_atom::value, st.user,
                                             users);
}

// The user actor is gone (a crash): register with its successor, which
// rebuilt its state from LMDB, and push whatever this connection missed.
// When the user is owned here, an inbox that does not take the connection
// back is a fault (1011); on another node, it is down: try again later,
// keeping the connection.
void reattach(self_ptr self) {
  auto& st = self->state;
  st.inbox = nullptr;
  auto failed = [=](const caf::error&) {
    auto& st = self->state;
    if (st.ctx->dir->owns(st.user)) {
      close_with(self, 1011, "inbox unavailable");
      return;
    }
    st.inbox_lost = true;
    arm_rejoin(self);
  };
  with_user(
    self, st.ctx, &st.users, st.user,
    [=](const user_actor& inbox) {
      auto& st = self->state;
      ask(self, st.ctx, inbox, send_timeout, register_atom::value, st.device,
          caf::actor_cast<connection_actor>(self))
        .then(
          [=](uint64_t head) {
            auto& st = self->state;
            st.inbox = inbox;
            st.inbox_lost = false;
            self->monitor(inbox);
            if (head > st.pushed) {
              st.behind = true;
              refill(self);
            }
          },
          failed);
    },
    failed);
}

void arm_rejoin(self_ptr self) {
  auto& st = self->state;
  if (st.rejoin_armed || st.closing)
    return;
  st.rejoin_armed = true;
  self->delayed_send(self, st.rejoin_delay, rejoin_atom::value);
  st.rejoin_delay = std::min(st.rejoin_delay * 2, std::chrono::milliseconds(2000));
}

void on_rejoin(self_ptr self) {
  auto& st = self->state;
  st.rejoin_armed = false;
  if (st.closing)
    return;
  if (st.inbox_lost)
    reattach(self);
  auto users = std::move(st.unwatched);
  st.unwatched.clear();
  for (const auto& u : users)
    subscribe_presence(self, u);
  if (!st.inbox_lost && st.unwatched.empty())
    st.rejoin_delay = std::chrono::milliseconds(250);
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
void on_crash(self_ptr self, const json& f, origin o) {
  auto& st = self->state;
  auto kind = f.value("kind", "");
  auto id = f.value("id", "");
  if (kind == "conn") {   // no reply: the actor is gone
    self->quit(caf::exit_reason::kill);
    return;
  }
  caf::actor target;
  if (kind == "user" && valid_user(id))
    target = caf::actor_cast<caf::actor>(st.ctx->dir->user(id));
  else if (auto c = parse_conv(id); kind == "conv" && c)
    target = caf::actor_cast<caf::actor>(st.ctx->dir->conversation(*c));
  if (!target) {
    reply_error(self, o.req, {errc::bad_frame, "kind must be conn, or user or conv with a valid id"}, o.enc);
    return;
  }
  caf::anon_send_exit(target, caf::exit_reason::kill);
  reply(self, ok_frame(o.req), o.enc);
}

// ---- the frame table: type -> (needs auth, parser, handler)

using frame_fn = void (*)(self_ptr, const json&, origin);

struct frame_route {
  bool needs_auth = true;
  bool fault_injection = false;   // served only with --fault-injection
  frame_fn handle = nullptr;
  size_t slot = 0;                // in client_frame_types(), for the metrics
};

// Parses the frame into Req, then hands it to Handle; a parse failure is
// answered with its error.
template <class Req, result<Req> (*Parse)(const json&), void (*Handle)(self_ptr, Req&, origin)>
void parsed(self_ptr self, const json& f, origin o) {
  auto r = Parse(f);
  if (!r)
    reply_error(self, o.req, r.error(), o.enc);
  else
    Handle(self, *r, o);
}

const std::unordered_map<std::string_view, frame_route>& frame_routes() {
  static const auto routes = [] {
  std::unordered_map<std::string_view, frame_route> r{
    {"ping", {false, false, on_ping}},
    {"auth", {false, false, parsed<auth_req, parse_auth, on_auth>}},
    {"send", {true, false, parsed<send_req, parse_send, on_send>}},
    {"send_batch", {true, false, parsed<send_batch_req, parse_send_batch, on_send_batch>}},
    {"ack", {true, false, parsed<ack_req, parse_ack, on_client_ack>}},
    {"sync", {true, false, parsed<sync_req, parse_sync, on_sync>}},
    {"history", {true, false, parsed<history_req, parse_history, on_history>}},
    {"read", {true, false, parsed<read_req, parse_read, on_read>}},
    {"unread", {true, false, on_unread}},
    {"convs", {true, false, parsed<convs_req, parse_convs, on_convs>}},
    {"mute", {true, false, parsed<mute_req, parse_mute, on_mute>}},
    {"recall", {true, false, parsed<amend_req, parse_recall, on_amend<amend_op::recall>>}},
    {"edit", {true, false, parsed<amend_req, parse_edit, on_amend<amend_op::edit>>}},
    {"typing", {true, false, parsed<conv_req, parse_conv_req, on_typing>}},
    {"presence_sub", {true, false, parsed<presence_sub_req, parse_presence_sub, on_presence_sub>}},
    {"group_create", {true, false, parsed<members_req, parse_members, on_group<group_op::create>>}},
    {"group_add", {true, false, parsed<members_req, parse_members, on_group<group_op::add>>}},
    {"group_remove", {true, false, parsed<members_req, parse_members, on_group<group_op::remove>>}},
    {"group_info", {true, false, parsed<conv_req, parse_conv_req, on_group_info>}},
    {"join", {true, false, parsed<conv_req, parse_conv_req, on_room<group_op::join>>}},
    {"leave", {true, false, parsed<conv_req, parse_conv_req, on_room<group_op::leave>>}},
    {"_crash", {true, true, on_crash}},
  };
  for (auto& [type, route] : r)
    route.slot = client_frame_slot(type);
  return r;
  }();
  return routes;
}

void handle_frame(self_ptr self, const std::string& data, bool binary) {
  auto& st = self->state;
  auto& stats = *st.ctx->metrics;
  stats.bytes_in += data.size();
  const size_t other = client_frame_types().size();   // no route took it
  if (st.closing || st.draining) {
    stats.frames_in.add(other);
    return;   // stopping: a send not taken is resent by the client, by cmid
  }
  auto arrived = std::chrono::steady_clock::now();
  auto enc = binary ? encoding::msgpack : encoding::json;
  if (data.size() > st.ctx->cfg.max_frame) {
    stats.frames_in.add(other);
    reply_error(self, std::nullopt,
                {errc::too_large, "frame over " + std::to_string(st.ctx->cfg.max_frame) + " bytes"},
                enc);
    return;
  }
  auto decoded = decode_frame(data, enc);
  if (!decoded) {
    stats.frames_in.add(other);
    reply_error(self, std::nullopt, decoded.error(), enc);
    return;
  }
  const json& f = *decoded;
  origin o{request_id(f), enc, arrived};
  const auto& t = f["t"].get_ref<const std::string&>();
  auto before = st.bad_streak;
  auto i = frame_routes().find(t);
  bool routed =
    i != frame_routes().end() && (!i->second.fault_injection || st.ctx->cfg.fault_injection);
  stats.frames_in.add(routed ? i->second.slot : other);
  if (!routed)
    reply_error(self, o.req, {errc::unknown_type, "unknown frame type '" + t + "'"}, enc);
  else if (i->second.needs_auth && !st.authed)
    reply_error(self, o.req, {errc::unauthorized, "authenticate first"}, enc);
  else
    i->second.handle(self, f, o);
  if (st.bad_streak == before)
    st.bad_streak = 0;   // a good frame ends the streak
}

} // namespace

connection_actor::behavior_type connection_fun(self_ptr self, const node_context* ctx,
                                               std::shared_ptr<frame_sink> sink) {
  self->state.ctx = ctx;
  self->state.sink = std::move(sink);
  log_stray_errors(self);
  ctx->metrics->connections++;
  ctx->metrics->connections_total++;
  self->attach_functor([stats = ctx->metrics] { stats->connections--; });
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  // A socket that upgrades and never authenticates holds a connection
  // slot and memory: it gets auth_timeout, then 4000.
  self->delayed_send(self, auth_timeout, auth_deadline_atom::value);
  return {
    [=](frame_atom, std::string& data, bool binary) { handle_frame(self, data, binary); },
    [=](push_atom, uint64_t iseq, message& m) { on_push(self, iseq, m); },
    [=](retransmit_atom) { on_tick(self); },
    [=](read_atom, std::string& conv, uint64_t seq) { event(self, read_frame(conv, seq)); },
    [=](mute_atom, std::string& conv, bool on) { event(self, mute_frame(conv, on)); },
    [=](mention_atom, std::string& conv, uint64_t seq, std::string& from) {
      event(self, mention_frame(conv, seq, from));
    },
    [=](receipt_atom, std::string& conv, std::string& user, uint64_t seq) {
      event(self, receipt_frame(conv, user, seq));
    },
    [=](typing_atom, std::string& conv, std::string& user) {
      event(self, typing_frame(conv, user));
    },
    [=](presence_atom, std::string& user, bool online) {
      event(self, presence_frame(user, online));
    },
    [=](held_atom, std::string& conv, uint64_t seq) { on_held_back(self, conv, seq); },
    [=](notify_atom) { flush_notifies(self); },
    [=](rejoin_atom) { on_rejoin(self); },
    [=](token_expiry_atom) { on_token_expiry(self); },
    [=](drain_atom) { on_drain(self); },
    [=](send_deadline_atom) { on_send_deadline(self); },
    [=](auth_deadline_atom) {
      if (!self->state.authed)
        close_with(self, 4000, "not authenticated within 10 s");
    },
    [=](kick_atom, uint16_t code) {
      close_with(self, code,
                 code == 4004 ? "disconnected by the server"
                              : "replaced by a newer connection of this device");
    },
    [=](closed_atom) {
      auto& st = self->state;
      if (st.authed) {
        spdlog::info("{}/{} left", st.user, st.device);
        notify_session(self, plugin::disconnect_atom::value);
      }
      if (st.inbox)
        self->send(st.inbox, unregister_atom::value, st.device,
                   caf::actor_cast<connection_actor>(self));
      self->quit();
    },
  };
}

} // namespace imengine
