#pragma once

// The hooks plugins registered, as the engine's actors see them: one slot
// per registration, holding the plugin actor's current handle (the
// supervisor in plugin_host.cpp replaces it after a crash) and its
// counters. Filled once at start, before any conversation runs; read by
// conversations and connections on any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/ids.hpp"
#include "engine/message.hpp"
#include "imengine/plugin.hpp"

namespace imengine {

enum class hook : uint8_t { before_persist, after_persist, offline, session };

const char* to_string(hook h);

// What every slot counts (GET /metrics, by plugin and hook).
struct hook_counters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> failures{0};   // deadline missed or the actor died
  std::atomic<uint64_t> rejected{0};   // before_persist: refused (policy included)
  std::atomic<uint64_t> dropped{0};    // observers: over max_pending
  std::atomic<uint64_t> restarts{0};
};

template <class Handle>
class hook_slot {
public:
  hook_slot(std::string plugin, plugin::hook_options opts)
    : plugin_(std::move(plugin)), opts_(std::move(opts)) {}

  const std::string& plugin() const { return plugin_; }
  const plugin::hook_options& options() const { return opts_; }

  Handle actor() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return actor_;
  }
  void set_actor(Handle h) {
    std::lock_guard<std::mutex> guard(mtx_);
    actor_ = std::move(h);
  }

  // An observer call may start: false (and counted) when max_pending are
  // still waiting for the plugin. Each true is followed by one finished().
  bool admit() {
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= opts_.max_pending) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      counters.dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    counters.calls.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  void finished() { pending_.fetch_sub(1, std::memory_order_relaxed); }

  hook_counters counters;

private:
  std::string plugin_;
  plugin::hook_options opts_;
  mutable std::mutex mtx_;
  Handle actor_;
  std::atomic<uint32_t> pending_{0};
};

template <class Handle>
using hook_slots = std::vector<std::shared_ptr<hook_slot<Handle>>>;

// The hooks that apply to one conversation, in --plugins order.
struct conv_hooks {
  hook_slots<plugin::before_persist_actor> before;
  hook_slots<plugin::after_persist_actor> after;
  hook_slots<plugin::offline_actor> offline;
};

// Whether a registration's filter takes a conversation with these members.
bool hook_matches(const plugin::hook_options& o, const conv_id& conv,
                  const std::vector<std::string>& members);

// Whether a session hook's filter takes this user.
bool hook_takes_user(const plugin::hook_options& o, const std::string& user);

// Calls an observer hook (after_persist, offline, session). The caller
// never waits: the answer only ends the call. A call stays pending until
// the plugin has taken it (so max_pending bounds what a slow plugin has
// queued); one answered after the deadline, or never because the actor
// died, counts as a failure.
template <class Self, class Handle, class... Ts>
void observe(Self* self, const std::shared_ptr<hook_slot<Handle>>& slot, const Ts&... xs) {
  auto h = slot->actor();
  if (!h) {
    slot->counters.failures.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!slot->admit())
    return;
  // Ends the call however the handlers go: run, or dropped with the
  // calling actor.
  auto token = std::shared_ptr<void>(nullptr, [slot](void*) { slot->finished(); });
  auto due = std::chrono::steady_clock::now() + slot->options().deadline;
  self->request(h, caf::infinite, xs...)
    .then(
      [slot, due, token]() {
        if (std::chrono::steady_clock::now() > due)
          slot->counters.failures.fetch_add(1, std::memory_order_relaxed);
      },
      [slot, token](caf::error&) {
        slot->counters.failures.fetch_add(1, std::memory_order_relaxed);
      });
}

// A committed message as plugins see it.
inline plugin::event event_of(const message& m) {
  return {m.conv, m.seq, m.mid, m.from, m.device, m.type, m.body, m.ex.empty() ? "{}" : m.ex, m.ts};
}

struct plugin_registry {
  hook_slots<plugin::before_persist_actor> before;
  hook_slots<plugin::after_persist_actor> after;
  hook_slots<plugin::offline_actor> offline;
  hook_slots<plugin::session_actor> session;

  bool any_conv_hooks() const { return !before.empty() || !after.empty() || !offline.empty(); }
  conv_hooks for_conv(const conv_id& conv, const std::vector<std::string>& members) const;

  // Prometheus lines for every slot.
  void render(std::string& out) const;
};

} // namespace imengine
