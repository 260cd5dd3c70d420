#include "actors/fanout.hpp"

#include <memory>

#include "actors/route.hpp"
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

void deliver(self_ptr self, const message& m) {
  auto* ctx = self->state.ctx;
  frame_bytes as_json, as_msgpack;   // encoded on first use, once per encoding
  uint64_t pushed = 0;
  for_online_members(self, m.conv, [&](const std::string&, const std::vector<local_conn>& conns) {
    if (!as_json) {
      as_json = std::make_shared<const std::string>(encode_msg(m, std::nullopt, encoding::json));
      as_msgpack = std::make_shared<const std::string>(encode_msg(m, std::nullopt, encoding::msgpack));
    }
    for (const auto& c : conns) {
      if (m.prio != 0 || c.sink->backlog() <= ctx->cfg.slow_queue) {
        c.sink->send(c.msgpack ? as_msgpack : as_json, c.msgpack);
        ++pushed;
      } else {
        self->send(c.actor, held_atom::value, m.conv, m.seq);   // slow reader: a notify later
      }
    }
  });
  ctx->metrics->pushes += pushed;
}

} // namespace

fanout_actor::behavior_type fanout_fun(self_ptr self, const node_context* ctx) {
  self->state.ctx = ctx;
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
      if (conns.empty())
        st.online.erase(i);
    }
    st.user_of.erase(u);
  });
  return {
    [=](online_atom, std::string& user, local_conn& conn) {
      self->monitor(conn.actor);
      self->state.user_of.emplace(conn.actor.address(), user);
      self->state.online[user].push_back(std::move(conn));
    },
    [=](members_atom, std::string& conv, std::vector<std::string>& added,
        std::vector<std::string>& removed, bool reset) {
      auto& members = self->state.subs[conv];
      if (reset)
        members.clear();
      for (auto& u : added)
        members.insert(std::move(u));
      for (const auto& u : removed)
        members.erase(u);
      if (members.empty())
        self->state.subs.erase(conv);
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
