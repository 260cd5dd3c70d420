#include "actors/user.hpp"

#include <chrono>

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "actors/route.hpp"
#include "engine/ids.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

using self_ptr = user_actor::stateful_pointer<user_state>;

constexpr auto ack_flush_delay = std::chrono::seconds(1);

void load_head(self_ptr self) {
  auto& st = self->state;
  auto t = st.ctx->store->read();
  st.head = st.assigned = st.ctx->store->user(t, st.user).last_iseq;
}

uint64_t& accepted_seq(self_ptr self, const std::string& conv) {
  auto& st = self->state;
  auto i = st.accepted.find(conv);
  if (i == st.accepted.end()) {
    auto t = st.ctx->store->read();
    auto seq = st.ctx->store->user_conv_of(t, st.user, conv).delivered_seq;
    i = st.accepted.emplace(conv, seq).first;
  }
  return i->second;
}

// Appends `m` with the next iseq; answers `rp` after the commit (true
// when the user has no device online: the conversation's offline hook)
// and then pushes it to every device.
void append(self_ptr self, message& m, caf::typed_response_promise<bool> rp) {
  auto& st = self->state;
  accepted_seq(self, m.conv) = m.seq;
  auto iseq = ++st.assigned;
  auto epoch = st.epoch;
  // The copy moves from the request into the one vector the job and the
  // pushes share.
  auto copies = std::make_shared<std::vector<message>>();
  copies->push_back(std::move(m));
  write_job job{[user = st.user, iseq, copies](storage::store& s, storage::txn& t) {
    return s.append_inbox(t, user, iseq, *copies);
  }};
  self->request(st.ctx->writer, caf::infinite, std::move(job))
    .then(
      [=](ok_atom) mutable {
        auto& st = self->state;
        st.head = iseq;
        st.ctx->metrics->inbox_appends++;
        rp.deliver(st.devices.empty());
        for (const auto& kv : st.devices)
          tell(self, st.ctx, kv.second, push_atom::value, iseq, copies->front());
      },
      [=](caf::error& e) mutable {
        rp.deliver(e);
        auto& st = self->state;
        if (epoch == st.epoch) {   // forget what was accepted, reload
          st.epoch++;
          st.accepted.clear();
          load_head(self);
        }
      });
}

enum class verdict { held, next, gap };

verdict judge(self_ptr self, const message& m, uint64_t position) {
  auto& accepted = accepted_seq(self, m.conv);
  accepted = std::max(accepted, position);
  if (m.seq <= accepted)
    return verdict::held;   // a redelivery: this inbox holds it already
  return m.seq == accepted + 1 ? verdict::next : verdict::gap;
}

// Copies of a conversation are accepted in seq order, each once. A copy
// past the next one is a join (or a return to inbox copies after a
// timeline): the position it starts from is in the conversation's store.
// Else it is refused, and the conversation resends from its watermark.
caf::result<bool> handle_deliver(self_ptr self, message& m) {
  auto& st = self->state;
  auto v = judge(self, m, 0);
  if (v == verdict::gap) {
    auto t = st.ctx->store->read();
    v = judge(self, m, st.ctx->store->user_conv_of(t, st.user, m.conv).delivered_seq);
  }
  if (v == verdict::held)
    return false;   // told before, when it was new
  auto rp = self->make_response_promise<bool>();
  if (v == verdict::next) {
    append(self, m, rp);
    return rp;
  }
  if (st.ctx->dir->owns(m.conv))
    return make_error(errc::internal, "inbox gap");
  // The conversation lives on another node: ask its reader, holding this
  // inbox's other copies until the answer (a gap is rare: a join).
  ask(self, st.ctx, st.ctx->dir->reader_of(m.conv), std::chrono::seconds(30),
      position_atom::value, st.user, m.conv)
    .await(
      [=](uint64_t position) mutable {
        switch (judge(self, m, position)) {
          case verdict::held: rp.deliver(false); break;
          case verdict::next: append(self, m, rp); break;
          case verdict::gap: rp.deliver(make_error(errc::internal, "inbox gap")); break;
        }
      },
      [=](caf::error& e) mutable { rp.deliver(e); });
  return rp;
}

void persist_acks(self_ptr self) {
  auto& st = self->state;
  st.ack_flush_scheduled = false;
  if (st.acked.empty())
    return;
  write_job job{[user = st.user, acked = std::move(st.acked)](storage::store& s,
                                                             storage::txn& t) {
    for (const auto& kv : acked)
      s.set_acked(t, user, kv.first, kv.second);
    return errc::none;
  }};
  st.acked.clear();
  // Fire and forget: a lost ack position only means a redelivery.
  self->request(st.ctx->writer, caf::infinite, std::move(job)).then([](ok_atom) {}, [](caf::error&) {});
}

// Pushes an event to every live connection of the user but `except`.
template <class... Ts>
void to_devices(self_ptr self, const std::string& except, Ts&&... xs) {
  for (const auto& kv : self->state.devices)
    if (kv.first != except)
      tell(self, self->state.ctx, kv.second, xs...);
}

void tell_watchers(self_ptr self, bool online) {
  for (const auto& kv : self->state.watchers)
    tell(self, self->state.ctx, kv.second, presence_atom::value, self->state.user, online);
}

// The user read `conv` up to `seq` on `device` (the reader of the
// conversation's node moved the position): tell the other devices and, in
// a dm, the peer.
void handle_read(self_ptr self, const std::string& conv, uint64_t seq,
                 const std::string& device) {
  auto& st = self->state;
  to_devices(self, device, read_atom::value, conv, seq);
  auto c = parse_conv(conv);
  if (c && c->kind == conv_kind::dm) {
    auto peer = c->a == st.user ? c->b : c->a;
    with_user(
      self, st.ctx, &st.peers, peer,
      [=](const user_actor& h) {
        tell(self, self->state.ctx, h, receipt_atom::value, conv, self->state.user, seq);
      },
      [](const caf::error&) {});   // the peer's node is down: the receipt is an event
  }
}

inbox_page inbox_after(self_ptr self, uint64_t after, uint32_t limit) {
  auto& st = self->state;
  auto t = st.ctx->store->read();
  auto page = st.ctx->store->inbox_after(t, st.user, after, limit);
  return {std::move(page.items), page.more};
}

void stop_if_idle(self_ptr self) {
  auto& st = self->state;
  if (st.ctx->cfg.actor_idle_s == 0 || !st.devices.empty() || !st.watchers.empty()
      || st.assigned != st.head)
    return;
  if (!st.ctx->dir->retire_user(st.user, self->address()))
    return;
  persist_acks(self);   // handed to the writer, which outlives us
  st.ctx->metrics->idle_stops.add(metrics::idle_user);
  self->quit();
}

} // namespace

user_actor::behavior_type user_fun(self_ptr self, const node_context* ctx, std::string user) {
  auto& st = self->state;
  st.ctx = ctx;
  st.user = std::move(user);
  log_stray_errors(self);
  ctx->metrics->user_actors++;
  self->attach_functor([stats = ctx->metrics] { stats->user_actors--; });
  load_head(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    st.watchers.erase(dm.source);
    auto had = !st.devices.empty();
    for (auto i = st.devices.begin(); i != st.devices.end();) {
      if (i->second.address() == dm.source)
        i = st.devices.erase(i);
      else
        ++i;
    }
    if (had && st.devices.empty())
      tell_watchers(self, false);
  });
  return {
    [=](register_atom, std::string& device, connection_actor& conn) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (st.ctx->cfg.fault_injection && st.ctx->refuse_next_register.exchange(false))
        return make_error(errc::unavailable, "register refused (fault injection)");
      auto was_online = !st.devices.empty();
      // A new device beyond the cap is refused; a known one replaces itself.
      if (st.devices.size() >= st.ctx->cfg.max_user_conns && !st.devices.count(device))
        return make_error(errc::rate_limited,
                          "too many connections of this user (--max-user-conns="
                            + std::to_string(st.ctx->cfg.max_user_conns) + ")");
      auto& slot = st.devices[device];
      if (slot && slot != conn)   // same (user, device) again: replace
        tell(self, st.ctx, slot, kick_atom::value, uint16_t{4001});
      slot = conn;
      self->monitor(conn);
      if (!was_online)
        tell_watchers(self, true);
      return st.head;
    },
    [=](unregister_atom, std::string& device, connection_actor& conn) {
      auto& st = self->state;
      if (auto i = st.devices.find(device); i != st.devices.end() && i->second == conn) {
        st.devices.erase(i);
        if (st.devices.empty())
          tell_watchers(self, false);
      }
      persist_acks(self);
    },
    [=](read_atom, std::string& conv, uint64_t seq, std::string& device) {
      handle_read(self, conv, seq, device);
    },
    [=](mute_atom, std::string& conv, bool on, std::string& device) {
      to_devices(self, device, mute_atom::value, conv, on);
    },
    [=](mention_atom, std::string& conv, uint64_t seq, std::string& from) {
      to_devices(self, std::string{}, mention_atom::value, conv, seq, from);
      return self->state.devices.empty();
    },
    [=](receipt_atom, std::string& conv, std::string& reader, uint64_t seq) {
      to_devices(self, std::string{}, receipt_atom::value, conv, reader, seq);
    },
    [=](typing_atom, std::string& conv, std::string& from) {
      to_devices(self, std::string{}, typing_atom::value, conv, from);
    },
    [=](watch_atom, connection_actor& watcher) -> bool {
      auto& st = self->state;
      if (st.watchers.emplace(watcher.address(), watcher).second)
        self->monitor(watcher);
      return !st.devices.empty();
    },
    [=](deliver_atom, message& m) {
      count_received(self, self->state.ctx);
      if (ctx->cfg.fault_injection && ctx->drop_next_deliver.exchange(false))
        return caf::result<bool>{self->make_response_promise<bool>()};   // dropped
      return handle_deliver(self, m);
    },
    [=](sync_atom, uint64_t after, uint32_t limit) { return inbox_after(self, after, limit); },
    [=](ack_atom, std::string& device, uint64_t iseq) {
      auto& cur = self->state.acked[device];
      cur = std::max(cur, iseq);
      if (!self->state.ack_flush_scheduled) {
        self->state.ack_flush_scheduled = true;
        self->delayed_send(self, ack_flush_delay, persist_atom::value);
      }
    },
    [=](persist_atom) { persist_acks(self); },
    // The server API's disconnect: every live connection closes with
    // `code`; each unregisters as its socket goes.
    [=](disconnect_atom, uint16_t code) {
      for (const auto& kv : self->state.devices)
        tell(self, self->state.ctx, kv.second, kick_atom::value, code);
      return static_cast<uint32_t>(self->state.devices.size());
    },
    // No message for --actor-idle-s: stop if nothing lives only here (no
    // device, no watcher, no copy being committed); the next use spawns
    // a fresh actor that reads its state back from LMDB. Fires again
    // after each quiet period while the actor stays.
    caf::after(idle_period(ctx)) >> [=] { stop_if_idle(self); },
  };
}

} // namespace imengine
