#include "actors/user.hpp"

#include <chrono>

#include "actors/node_context.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

using self_ptr = caf::stateful_actor<user_state>*;

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

void handle_deliver(self_ptr self, message& m) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  auto& accepted = accepted_seq(self, m.conv);
  if (m.seq <= accepted) {   // a redelivery: this inbox holds it already
    rp.deliver(ok_atom::value);
    return;
  }
  if (m.seq != accepted + 1) {   // the conversation resends from its watermark
    rp.deliver(make_error(errc::internal, "inbox gap"));
    return;
  }
  accepted = m.seq;
  auto iseq = ++st.assigned;
  auto epoch = st.epoch;
  write_job job{[user = st.user, iseq, m](storage::store& s, storage::txn& t) {
    return s.append_inbox(t, user, iseq, {m});
  }};
  self->request(st.ctx->writer, caf::infinite, std::move(job))
    .then(
      [=](ok_atom) mutable {
        auto& st = self->state;
        st.head = iseq;
        st.ctx->metrics->inbox_appends++;
        rp.deliver(ok_atom::value);
        for (const auto& kv : st.devices)
          self->send(kv.second, push_atom::value, iseq, m);
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

void flush_acks(self_ptr self) {
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

} // namespace

caf::behavior user_actor(self_ptr self, const node_context* ctx, std::string user) {
  auto& st = self->state;
  st.ctx = ctx;
  st.user = std::move(user);
  load_head(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& devices = self->state.devices;
    for (auto i = devices.begin(); i != devices.end();) {
      if (i->second.address() == dm.source)
        i = devices.erase(i);
      else
        ++i;
    }
  });
  return {
    [=](register_atom, std::string& device, caf::actor& conn) -> uint64_t {
      auto& slot = self->state.devices[device];
      if (slot && slot != conn)   // same (user, device) again: replace
        self->send(slot, kick_atom::value, uint16_t{4001});
      slot = conn;
      self->monitor(conn);
      return self->state.head;
    },
    [=](unregister_atom, std::string& device, caf::actor& conn) {
      auto& devices = self->state.devices;
      if (auto i = devices.find(device); i != devices.end() && i->second == conn)
        devices.erase(i);
      flush_acks(self);
    },
    [=](deliver_atom, message& m) { handle_deliver(self, m); },
    [=](ack_atom, std::string& device, uint64_t iseq) {
      auto& cur = self->state.acked[device];
      cur = std::max(cur, iseq);
      if (!self->state.ack_flush_scheduled) {
        self->state.ack_flush_scheduled = true;
        self->delayed_send(self, ack_flush_delay, flush_atom::value);
      }
    },
    [=](flush_atom) { flush_acks(self); },
  };
}

} // namespace imengine
