#include "actors/directory.hpp"

#include <algorithm>

#include "actors/conversation.hpp"
#include "actors/node_context.hpp"
#include "actors/shrink.hpp"
#include "actors/user.hpp"
#include "engine/cluster.hpp"

namespace imengine {

directory::directory(caf::actor_system& sys, const node_context* ctx)
  : sys_(sys), ctx_(ctx) {
}

directory::~directory() {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  life_->alive = false;
}

template <class Map, class Iter>
void directory::erase_from(Map& map, Iter i) {
  map.erase(i);
  shrink_if_sparse(map);
}

bool directory::may_restart(const std::string& key) {
  auto now = std::chrono::steady_clock::now();
  auto old = [&](auto t) { return now - t > restart_window; };
  // Crashes are rare: sweep every history on each, so that keys that
  // crashed once are not remembered forever.
  for (auto i = restarts_.begin(); i != restarts_.end();) {
    auto& times = i->second;
    times.erase(std::remove_if(times.begin(), times.end(), old), times.end());
    i = times.empty() ? restarts_.erase(i) : std::next(i);
  }
  auto& times = restarts_[key];
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
  // The respawn runs under the lock too, so the directory outlives it.
  h->attach_functor([this, life = life_, &map, key, addr, on_crash](const caf::error& reason) {
    std::lock_guard<std::recursive_mutex> guard(life->mtx);
    if (!life->alive)
      return;
    if (auto i = map.find(key); i != map.end() && i->second.address() == addr)
      erase_from(map, i);
    auto crashed = reason && reason != caf::exit_reason::user_shutdown;
    if (crashed && on_crash && !closed_ && may_restart(key))
      on_crash();
  });
  return h;
}

template <class Handle>
bool directory::retire_in(std::unordered_map<std::string, Handle>& map, const std::string& key,
                          const caf::actor_addr& addr) {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  auto i = map.find(key);
  if (i == map.end() || i->second.address() != addr)
    return false;
  erase_from(map, i);
  return true;
}

bool directory::retire_user(const std::string& id, const caf::actor_addr& addr) {
  return retire_in(users_, id, addr);
}

bool directory::retire_conversation(const std::string& conv, const caf::actor_addr& addr) {
  return retire_in(convs_, conv, addr);
}

template <class Handle>
void directory::remember_in(std::unordered_map<std::string, Handle>& map, const std::string& key,
                            const Handle& h) {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  if (closed_ || !h)
    return;
  auto [i, added] = map.emplace(key, h);
  if (!added && i->second == h)
    return;
  i->second = h;
  // The proxy dies with its actor or with the link to its node.
  auto addr = h.address();
  h->attach_functor([this, life = life_, &map, key, addr] {
    std::lock_guard<std::recursive_mutex> guard(life->mtx);
    if (!life->alive)
      return;
    if (auto i = map.find(key); i != map.end() && i->second.address() == addr)
      erase_from(map, i);
  });
}

const std::string& directory::self() const {
  return ctx_->cluster->self();
}

const std::string& directory::owner(const std::string& key) const {
  return ctx_->cluster->owner(key);
}

user_actor directory::user(const std::string& id) {
  if (!owns(id)) {
    std::lock_guard<std::recursive_mutex> guard(mtx_);
    auto i = remote_users_.find(id);
    return i == remote_users_.end() ? user_actor{} : i->second;
  }
  // Users come back on their next lookup: their connections look them up
  // as soon as they see them go.
  return find_or_spawn(users_, id, [&] { return sys_.spawn(user_fun, ctx_, id); }, nullptr);
}

conversation_actor directory::conversation(const conv_id& id) {
  if (!owns(id.name)) {
    std::lock_guard<std::recursive_mutex> guard(mtx_);
    auto i = remote_convs_.find(id.name);
    return i == remote_convs_.end() ? conversation_actor{} : i->second;
  }
  return find_or_spawn(
    convs_, id.name, [&] { return sys_.spawn(conversation_fun, ctx_, id); },
    [this, id] { conversation(id); });
}

void directory::remember(const std::string& id, const user_actor& h) {
  remember_in(remote_users_, id, h);
}

void directory::remember(const std::string& conv, const conversation_actor& h) {
  remember_in(remote_convs_, conv, h);
}

void directory::peer_up(const std::string& name, peer_link link) {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  peers_[name] = std::move(link);
}

void directory::peer_down(const std::string& name) {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  peers_.erase(name);
}

std::optional<peer_link> directory::peer(const std::string& name) const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  auto i = peers_.find(name);
  return i == peers_.end() ? std::nullopt : std::optional<peer_link>{i->second};
}

std::string directory::peer_name(const caf::node_id& id) const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  for (const auto& kv : peers_)
    if (kv.second.node.node() == id)
      return kv.first;
  return {};
}

std::vector<std::pair<std::string, bool>> directory::peer_states() const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& name : ctx_->cluster->nodes())
    if (name != self())
      out.emplace_back(name, peers_.count(name) > 0);
  return out;
}

std::vector<std::pair<std::string, fanout_actor>> directory::peer_fanouts() const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  std::vector<std::pair<std::string, fanout_actor>> out;
  for (const auto& kv : peers_)
    out.emplace_back(kv.first, kv.second.fanout);
  return out;
}

reader_actor directory::reader_of(const std::string& key) const {
  auto& node = owner(key);
  if (node == self())
    return ctx_->reader;
  auto p = peer(node);
  return p ? p->reader : reader_actor{};
}

std::vector<std::pair<std::string, reader_actor>> directory::readers() const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  std::vector<std::pair<std::string, reader_actor>> out{{self(), ctx_->reader}};
  for (const auto& name : ctx_->cluster->nodes()) {
    if (name == self())
      continue;
    auto i = peers_.find(name);
    out.emplace_back(name, i == peers_.end() ? reader_actor{} : i->second.reader);
  }
  return out;
}

directory::table_sizes directory::sizes() const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  return {users_.size(), convs_.size(), remote_users_.size(), remote_convs_.size(),
          restarts_.size()};
}

std::vector<conversation_actor> directory::conversations() const {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  std::vector<conversation_actor> out;
  for (auto& kv : convs_)
    out.push_back(kv.second);
  return out;
}

std::vector<caf::actor_addr> directory::close() {
  std::lock_guard<std::recursive_mutex> guard(mtx_);
  closed_ = true;
  std::vector<caf::actor_addr> live;
  for (auto& kv : users_)
    live.push_back(kv.second.address());
  for (auto& kv : convs_)
    live.push_back(kv.second.address());
  users_.clear();
  convs_.clear();
  remote_users_.clear();
  remote_convs_.clear();
  peers_.clear();
  return live;
}

} // namespace imengine
