#include "actors/directory.hpp"

#include <algorithm>

#include "actors/conversation.hpp"
#include "actors/node_context.hpp"
#include "actors/user.hpp"

namespace imengine {

directory::directory(caf::actor_system& sys, const node_context* ctx)
  : sys_(sys), ctx_(ctx) {
}

bool directory::may_restart(const std::string& key) {
  auto now = std::chrono::steady_clock::now();
  auto& times = restarts_[key];
  times.erase(std::remove_if(times.begin(), times.end(),
                             [&](auto t) { return now - t > restart_window; }),
              times.end());
  if (times.size() >= max_restarts)
    return false;
  times.push_back(now);
  return true;
}

template <class Handle, class Spawn>
Handle directory::find_or_spawn(std::unordered_map<std::string, Handle>& map,
                                const std::string& key, Spawn spawn,
                                std::function<void()> on_crash) {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  if (closed_)
    return Handle{};
  if (auto i = map.find(key); i != map.end())
    return i->second;
  Handle h = spawn();
  map.emplace(key, h);
  // Forget the handle once the actor is gone, unless a newer one took its
  // place already; after a crash, maybe start a new one right away.
  auto addr = h.address();
  h->attach_functor([this, &map, key, addr, on_crash](const caf::error& reason) {
    std::function<void()> again;
    {
      std::lock_guard<std::recursive_mutex> guard(mtx_);
      if (auto i = map.find(key); i != map.end() && i->second.address() == addr)
        map.erase(i);
      auto crashed = reason && reason != caf::exit_reason::user_shutdown;
      if (crashed && on_crash && !closed_ && may_restart(key))
        again = on_crash;
    }
    if (again)
      again();
  });
  return h;
}

user_actor directory::user(const std::string& id) {
  // Users come back on their next lookup: their connections look them up
  // as soon as they see them go.
  return find_or_spawn(users_, id, [&] { return sys_.spawn(user_fun, ctx_, id); }, nullptr);
}

conversation_actor directory::conversation(const conv_id& id) {
  return find_or_spawn(
    convs_, id.name, [&] { return sys_.spawn(conversation_fun, ctx_, id); },
    [this, id] { conversation(id); });
}

std::vector<caf::actor_addr> directory::all() const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  std::vector<caf::actor_addr> out;
  for (auto& kv : users_)
    out.push_back(kv.second.address());
  for (auto& kv : convs_)
    out.push_back(kv.second.address());
  return out;
}

void directory::close() {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  closed_ = true;
  users_.clear();
  convs_.clear();
}

} // namespace imengine
