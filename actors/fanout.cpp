#include "actors/fanout.hpp"

#include <memory>

namespace imengine {

namespace {

using self_ptr = caf::stateful_actor<fanout_state>*;

// Calls f(user, connections) for each member of `conv` online here.
template <class F>
void for_online_members(self_ptr self, const std::string& conv, F f) {
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
  timeline_frame f;
  f.conv = m.conv;
  f.seq = m.seq;
  f.prio = m.prio;
  auto frame = msg_frame(m, std::nullopt);
  for_online_members(self, m.conv, [&](const std::string&, const std::vector<caf::actor>& conns) {
    if (!f.json) {   // encoded on first use, once per encoding
      f.json = std::make_shared<const std::string>(encode_frame(frame, encoding::json));
      f.msgpack = std::make_shared<const std::string>(encode_frame(frame, encoding::msgpack));
    }
    for (const auto& conn : conns)
      self->send(conn, f);
  });
}

} // namespace

caf::behavior fanout_actor(self_ptr self) {
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& online = self->state.online;
    for (auto i = online.begin(); i != online.end();) {
      auto& conns = i->second;
      conns.erase(std::remove_if(conns.begin(), conns.end(),
                                 [&](const caf::actor& c) { return c.address() == dm.source; }),
                  conns.end());
      i = conns.empty() ? online.erase(i) : std::next(i);
    }
  });
  return {
    [=](register_atom, std::string& user, caf::actor& conn) {
      self->monitor(conn);
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
    [=](timeline_atom, message& m) { deliver(self, m); },
    [=](typing_atom, std::string& conv, std::string& from) {
      for_online_members(self, conv, [&](const std::string& user, const std::vector<caf::actor>& conns) {
        if (user != from)
          for (const auto& conn : conns)
            self->send(conn, typing_atom::value, conv, from);
      });
    },
  };
}

} // namespace imengine
