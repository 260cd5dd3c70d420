#pragma once

// How an actor reaches the owner of a user or conversation, on this node
// or another, and the one place that counts what goes to another node.
// Remote requests time out below the protocol's 5 s bound: CAF 0.17 drops
// messages to a dead node's actors without an error (docs/CLUSTER.md).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/node_context.hpp"
#include "engine/metrics.hpp"

namespace imengine {

// A request to another node's actor: lookups, sends, reads.
constexpr auto remote_timeout = std::chrono::seconds(4);

inline caf::error node_unavailable(const std::string& node) {
  return make_error(errc::unavailable, "node " + node + " is unavailable");
}

// Counts one message to `h` if it lives on another node.
template <class Self, class Handle>
void count_send(Self* self, const node_context* ctx, const Handle& h) {
  if (!h || h.node() == self->node())
    return;
  if (auto* p = ctx->metrics->peer(ctx->dir->peer_name(h.node())))
    p->sent.fetch_add(1, std::memory_order_relaxed);
}

// Counts the message being handled if it came from another node.
template <class Self>
void count_received(Self* self, const node_context* ctx) {
  const auto& sender = self->current_sender();
  if (!sender || sender->node() == self->node())
    return;
  if (auto* p = ctx->metrics->peer(ctx->dir->peer_name(sender->node())))
    p->received.fetch_add(1, std::memory_order_relaxed);
}

// Records how long a request to `h` took, if it went to another node.
template <class Self, class Handle>
void observe_request(Self* self, const node_context* ctx, const Handle& h,
                     std::chrono::steady_clock::time_point start) {
  if (!h || h.node() == self->node())
    return;
  if (auto* p = ctx->metrics->peer(ctx->dir->peer_name(h.node())))
    p->request_seconds.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// An error message that answers no request (a one-way message a peer
// could not take, e.g. from a node of another version) is logged: CAF's
// default would stop the actor that sent it.
template <class Self>
void log_stray_errors(Self* self) {
  self->set_error_handler([self](caf::error& e) {
    spdlog::warn("{} {}: {}", self->name(), self->id(), self->system().render(e));
  });
}

// A one-way message, counted when it crosses nodes.
template <class Self, class Handle, class... Ts>
void tell(Self* self, const node_context* ctx, const Handle& h, Ts&&... xs) {
  count_send(self, ctx, h);
  self->send(h, std::forward<Ts>(xs)...);
}

// A request with `local` as its timeout on this node and remote_timeout
// across nodes; use .then / .await on the result.
template <class Self, class Handle, class Duration, class... Ts>
auto ask(Self* self, const node_context* ctx, const Handle& h, Duration local, Ts&&... xs) {
  count_send(self, ctx, h);
  auto timeout = h && h.node() != self->node()
                   ? std::chrono::duration_cast<std::chrono::milliseconds>(remote_timeout)
                   : std::chrono::duration_cast<std::chrono::milliseconds>(local);
  return self->request(h, timeout, std::forward<Ts>(xs)...);
}

// A request whose deadline the caller keeps itself while `h` is on this
// node (no CAF clock entry: one per request is a measurable share of a
// message's CPU); remote_timeout across nodes, as for ask.
template <class Self, class Handle, class... Ts>
auto ask_watched(Self* self, const node_context* ctx, const Handle& h, Ts&&... xs) {
  count_send(self, ctx, h);
  caf::duration timeout = caf::infinite;
  if (h && h.node() != self->node())
    timeout = caf::duration{remote_timeout};
  return self->request(h, timeout, std::forward<Ts>(xs)...);
}

// An actor's lookups of remote handles still on their way, by key. Work
// for a key whose lookup is pending waits behind it, in order: a handle
// another actor made known meanwhile must not let later work overtake
// earlier work (a connection's sends to one conversation keep their order).
template <class Handle>
struct lookups {
  using ok_fn = std::function<void(const Handle&)>;
  using fail_fn = std::function<void(const caf::error&)>;
  std::unordered_map<std::string, std::vector<std::pair<ok_fn, fail_fn>>> waiting;
};

namespace detail {

// Calls ok(handle) with the actor of `key` on its owner: at once when it
// is known here (owned here, or remembered) and no lookup of it is
// pending, else after asking the owner node for it (Await: holding the
// caller's mailbox meanwhile, as auth does; `waits` may then be null).
// fail(error) when the owner is down or does not answer.
template <bool Await, class Handle, class Atom, class Self, class Ok, class Fail>
void with_owner(Self* self, const node_context* ctx, lookups<Handle>* waits,
                const std::string& key, Handle known, Ok ok, Fail fail) {
  if (waits) {
    if (auto i = waits->waiting.find(key); i != waits->waiting.end()) {
      i->second.emplace_back(std::move(ok), std::move(fail));
      return;
    }
  }
  if (known) {
    ok(known);
    return;
  }
  auto& dir = *ctx->dir;
  const auto& owner = dir.owner(key);
  if (owner == dir.self()) {   // closed: the node is stopping
    fail(make_error(errc::unavailable, "node is shutting down"));
    return;
  }
  auto p = dir.peer(owner);
  if (!p) {
    fail(node_unavailable(owner));
    return;
  }
  using waiter = std::pair<typename lookups<Handle>::ok_fn, typename lookups<Handle>::fail_fn>;
  waiter own{std::move(ok), std::move(fail)};
  if (waits)
    waits->waiting[key].push_back(own);
  // Everything that waited for `key`, in order; or just the caller's own.
  auto take = [=] {
    std::vector<waiter> all;
    if (!waits) {
      all.push_back(own);
    } else if (auto i = waits->waiting.find(key); i != waits->waiting.end()) {
      all = std::move(i->second);
      waits->waiting.erase(i);
    }
    return all;
  };
  auto start = std::chrono::steady_clock::now();
  auto got = [=](Handle& h) {
    observe_request(self, ctx, p->node, start);
    ctx->dir->remember(key, h);
    for (auto& w : take())
      w.first(h);
  };
  auto lost = [=](caf::error& e) {
    for (auto& w : take())
      w.second(e);
  };
  auto rh = ask(self, ctx, p->node, remote_timeout, Atom::value, key);
  if constexpr (Await)
    rh.await(got, lost);
  else
    rh.then(got, lost);
}

} // namespace detail

template <bool Await = false, class Self, class Ok, class Fail>
void with_user(Self* self, const node_context* ctx, lookups<user_actor>* waits,
               const std::string& id, Ok ok, Fail fail) {
  detail::with_owner<Await, user_actor, user_atom>(self, ctx, waits, id, ctx->dir->user(id),
                                                   std::move(ok), std::move(fail));
}

template <bool Await = false, class Self, class Ok, class Fail>
void with_conversation(Self* self, const node_context* ctx, lookups<conversation_actor>* waits,
                       const conv_id& c, Ok ok, Fail fail) {
  detail::with_owner<Await, conversation_actor, conv_atom>(
    self, ctx, waits, c.name, ctx->dir->conversation(c), std::move(ok), std::move(fail));
}

// Asks every node's reader the same question (readers hold what their
// node stores); `done` gets all the answers, in no particular order, or
// `fail` the first error: a node that is down may hold part of the answer.
template <class T, class Self, class Done, class Fail, class... Ts>
void ask_every_reader(Self* self, const node_context* ctx, std::chrono::milliseconds timeout,
                      Done done, Fail fail, Ts... xs) {
  auto readers = ctx->dir->readers();
  for (const auto& [node, reader] : readers)
    if (!reader)
      return fail(node_unavailable(node));
  struct gather {
    size_t waiting = 0;
    bool failed = false;
    std::vector<T> answers;
  };
  auto g = std::make_shared<gather>();
  g->waiting = readers.size();
  for (const auto& [node, reader] : readers)
    ask(self, ctx, reader, timeout, xs...)
      .then(
        [=](T& answer) mutable {
          if (g->failed)
            return;
          g->answers.push_back(std::move(answer));
          if (--g->waiting == 0)
            done(g->answers);
        },
        [=](caf::error& e) mutable {
          if (!std::exchange(g->failed, true))
            fail(e);
        });
}

} // namespace imengine
