#include "actors/fanout.hpp"

#include <memory>

#include "actors/route.hpp"
#include "actors/shrink.hpp"
#include "engine/frame_writer.hpp"

namespace imengine {

namespace {

using self_ptr = fanout_actor::stateful_pointer<fanout_state>;

// Calls f(user, connections) for each member of `conv` online here.
template <class F>
void for_online_members(self_ptr self, const std::string& conv, F&& f) {
  auto& st = self->state;
  auto sub = st.subs.find(conv);
  if (sub == st.subs.end())
    return;
  // Walk the smaller side: members of a huge room, or users online here.
  if (sub->second.size() <= st.online.size()) {
    for (const auto& user : sub->second)
      if (auto i = st.online.find(user); i != st.online.end())
        f(user, i->second);
  } else {
    for (const auto& kv : st.online)
      if (sub->second.count(kv.first))
        f(kv.first, kv.second);
  }
}

const size_t msg_slot = server_frame_slot("msg");

void deliver(self_ptr self, const message& m) {
  auto* ctx = self->state.ctx;
  frame_bytes as_json, as_msgpack;   // encoded on first use, once per encoding
  uint64_t pushed = 0, bytes = 0;
  for_online_members(self, m.conv, [&](const std::string&, const std::vector<local_conn>& conns) {
    if (!as_json) {
      as_json = std::make_shared<const std::string>(encode_msg(m, std::nullopt, encoding::json));
      as_msgpack = std::make_shared<const std::string>(encode_msg(m, std::nullopt, encoding::msgpack));
    }
    for (const auto& c : conns) {
      if (m.prio != 0 || c.sink->backlog() <= ctx->cfg.slow_queue) {
        const auto& b = c.msgpack ? as_msgpack : as_json;
        bytes += b->size();
        c.sink->send(b, c.msgpack);
        ++pushed;
      } else {
        self->send(c.actor, held_atom::value, m.conv, m.seq);   // slow reader: a notify later
      }
    }
  });
  ctx->metrics->pushes += pushed;
  ctx->metrics->frames_out.add(msg_slot, pushed);
  ctx->metrics->bytes_out += bytes;
}

// Tells a conversation on another node whether members of it are online
// here (its own node's fanout gets every message anyway).
void tell_interest(self_ptr self, const std::string& conv, bool any) {
  auto i = self->state.present.find(conv);
  if (i == self->state.present.end() || !i->second.owner
      || i->second.owner.node() == self->node())
    return;
  tell(self, self->state.ctx, i->second.owner, interest_atom::value,
       caf::actor_cast<fanout_actor>(self), any);
}

// Moves the count of online members of `conv` by `delta`; tells on 0 <-> 1.
void count_online(self_ptr self, const std::string& conv, int delta) {
  auto i = self->state.present.find(conv);
  if (i == self->state.present.end())
    return;
  auto before = i->second.online;
  i->second.online = delta > 0 ? before + 1 : (before > 0 ? before - 1 : 0);
  if ((before == 0) != (i->second.online == 0))
    tell_interest(self, conv, i->second.online > 0);
}

// A user's first connection here came, or its last one went.
void user_online(self_ptr self, const std::string& user, bool online) {
  auto i = self->state.convs_of.find(user);
  if (i == self->state.convs_of.end())
    return;
  for (const auto& conv : i->second)
    count_online(self, conv, online ? 1 : -1);
}

void change_members(self_ptr self, std::string& conv, std::vector<std::string>& added,
                    std::vector<std::string>& removed, bool reset) {
  auto& st = self->state;
  auto& members = st.subs[conv];
  auto& p = st.present[conv];
  if (auto owner = caf::actor_cast<conversation_actor>(self->current_sender()))
    p.owner = owner;   // a respawned conversation has a new actor
  auto was = p.online;
  if (reset) {
    for (const auto& u : members)
      if (auto i = st.convs_of.find(u); i != st.convs_of.end() && i->second.erase(conv)
                                         && i->second.empty())
        st.convs_of.erase(i);
    members.clear();
    p.online = 0;
  }
  for (auto& u : added)
    if (members.insert(u).second) {
      st.convs_of[u].insert(conv);
      p.online += st.online.count(u);
    }
  for (const auto& u : removed)
    if (members.erase(u) > 0) {
      if (auto i = st.convs_of.find(u); i != st.convs_of.end() && i->second.erase(conv)
                                         && i->second.empty())
        st.convs_of.erase(i);
      if (st.online.count(u) && p.online > 0)
        --p.online;
    }
  // A (re)set membership comes from a conversation that knows nothing of
  // this node yet: it always hears; a change only when it matters.
  if (reset || (was == 0) != (p.online == 0))
    tell_interest(self, conv, p.online > 0);
  if (members.empty()) {
    st.subs.erase(conv);
    st.present.erase(conv);
  }
}

} // namespace

fanout_actor::behavior_type fanout_fun(self_ptr self, const node_context* ctx) {
  self->state.ctx = ctx;
  log_stray_errors(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto u = st.user_of.find(dm.source);
    if (u == st.user_of.end())
      return;
    if (auto i = st.online.find(u->second); i != st.online.end()) {
      auto& conns = i->second;
      conns.erase(std::remove_if(conns.begin(), conns.end(),
                                 [&](const local_conn& c) { return c.actor.address() == dm.source; }),
                  conns.end());
      if (conns.empty()) {
        st.online.erase(i);
        user_online(self, u->second, false);
        shrink_if_sparse(st.online);
      }
    }
    st.user_of.erase(u);
    shrink_if_sparse(st.user_of);
    ctx->metrics->fanout_users = static_cast<int64_t>(st.online.size());
  });
  return {
    [=](online_atom, std::string& user, local_conn& conn) {
      self->monitor(conn.actor);
      self->state.user_of.emplace(conn.actor.address(), user);
      auto& conns = self->state.online[user];
      conns.push_back(std::move(conn));
      if (conns.size() == 1) {
        user_online(self, user, true);
        ctx->metrics->fanout_users = static_cast<int64_t>(self->state.online.size());
      }
    },
    [=](members_atom, std::string& conv, std::vector<std::string>& added,
        std::vector<std::string>& removed, bool reset) {
      count_received(self, ctx);
      change_members(self, conv, added, removed, reset);
    },
    [=](timeline_atom, message& m) {
      count_received(self, ctx);
      deliver(self, m);
    },
    [=](typing_atom, std::string& conv, std::string& from) {
      for_online_members(self, conv, [&](const std::string& user, const std::vector<local_conn>& conns) {
        if (user != from)
          for (const auto& conn : conns)
            self->send(conn.actor, typing_atom::value, conv, from);
      });
    },
  };
}

} // namespace imengine
