#include "actors/cluster.hpp"

#include <algorithm>

#include <caf/io/all.hpp>
#include <caf/openssl/manager.hpp>
#include <spdlog/spdlog.h>

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "actors/route.hpp"

namespace imengine {

directory_actor::behavior_type directory_fun(directory_actor::pointer self,
                                             const node_context* ctx) {
  return {
    [=](hello_atom, const std::string& from) -> caf::result<node_hello> {
      spdlog::info("{}: hello from {}", ctx->cfg.node, from);
      // Over TLS this node does not dial `from` (see peers_actor): tell
      // the peers actor who dialed, so that it links back.
      if (ctx->cfg.cluster_tls() && from < ctx->cfg.node)
        if (auto peers = self->home_system().registry().get(peers_registry_name))
          caf::anon_send(caf::actor_cast<peers_actor>(peers), linked_atom::value, from,
                         self->current_sender());
      return node_hello{ctx->cfg.node, ctx->fanout, ctx->reader};
    },
    [=](user_atom, const std::string& id) -> caf::result<user_actor> {
      count_received(self, ctx);
      if (!valid_user(id) || !ctx->dir->owns(id))
        return make_error(errc::internal, id + " is not owned by " + ctx->cfg.node);
      if (auto h = ctx->dir->user(id))
        return h;
      return make_error(errc::unavailable, "node is shutting down");
    },
    [=](conv_atom, const std::string& conv) -> caf::result<conversation_actor> {
      count_received(self, ctx);
      auto c = parse_conv(conv);
      if (!c || !ctx->dir->owns(conv))
        return make_error(errc::internal, conv + " is not owned by " + ctx->cfg.node);
      if (auto h = ctx->dir->conversation(*c))
        return h;
      return make_error(errc::unavailable, "node is shutting down");
    },
  };
}

namespace {

using self_ptr = peers_actor::stateful_pointer<peers_state>;

constexpr auto max_backoff = std::chrono::milliseconds(2000);
constexpr auto dial_timeout = std::chrono::seconds(3);

void dial_later(self_ptr self, peer_state& p) {
  p.dialing = false;
  self->delayed_send(self, p.backoff, dial_atom::value, p.cfg.name);
  p.backoff = std::min(p.backoff * 2, max_backoff);
}

// A dial that did not bring the peer up: counted, and logged once per run
// of failures (the first after start or after the link went down), so
// that a peer that stays away, e.g. refused by TLS, is not logged every 2 s.
void dial_failed(self_ptr self, peer_state& p, const std::string& why) {
  auto& st = self->state;
  if (auto* m = st.ctx->metrics->peer(p.cfg.name))
    m->dial_failures.fetch_add(1, std::memory_order_relaxed);
  if (!p.failing)
    spdlog::info("{}: cannot link to peer {} at {}:{} ({}); retrying", st.ctx->cfg.node,
                 p.cfg.name, p.cfg.host, p.cfg.port, why);
  p.failing = true;
  dial_later(self, p);
}

void mark(const node_context* ctx, const std::string& name, bool up) {
  if (auto* m = ctx->metrics->peer(name))
    m->up.store(up ? 1 : 0);
}

void on_hello(self_ptr self, const std::string& name, const directory_actor& h, node_hello& hi) {
  auto& st = self->state;
  auto& p = st.peers.at(name);
  if (hi.node != name) {
    spdlog::error("{}: {}@{}:{} says it is {}", st.ctx->cfg.node, name, p.cfg.host, p.cfg.port,
                  hi.node);
    dial_failed(self, p, "it is another node");
    return;
  }
  p.dialing = false;
  p.failing = false;
  p.node = h;
  p.backoff = std::chrono::milliseconds(100);
  self->monitor(h);
  // Timeline conversations tell the peer's fanout their members first,
  // then (once the peer is listed) their messages.
  for (auto& conv : st.ctx->dir->conversations())
    self->send(conv, resync_atom::value, hi.fanout);
  st.ctx->dir->peer_up(name, peer_link{h, hi.fanout, hi.reader});
  mark(st.ctx, name, true);
  spdlog::info("{}: peer {} is up", st.ctx->cfg.node, name);
}

void dial(self_ptr self, const std::string& name) {
  auto& st = self->state;
  auto i = st.peers.find(name);
  if (i == st.peers.end() || i->second.node || i->second.dialing)
    return;
  auto& p = i->second;
  if (st.ctx->cfg.cluster_tls() && p.cfg.name < st.ctx->cfg.node) {
    p.dialing = false;   // it dials us; linked() follows its hello
    return;
  }
  p.dialing = true;
  // The TLS manager's middleman actor is what caf::openssl::remote_actor
  // asks; asked with request here, no scheduler thread blocks on a dial.
  auto& sys = self->system();
  auto mm = st.ctx->cfg.cluster_tls() ? sys.openssl_manager().actor_handle()
                                      : sys.middleman().actor_handle();
  self->request(mm, dial_timeout, caf::connect_atom::value, p.cfg.host, p.cfg.port)
    .then(
      [=](caf::node_id& nid, caf::strong_actor_ptr& ptr, std::set<std::string>& ifs) {
        auto& p = self->state.peers.at(name);
        // The middleman's cache may still answer with the dead node.
        if (!ptr || nid == p.last_dead || !self->system().assignable<directory_actor>(ifs)) {
          dial_failed(self, p, ptr ? "stale or foreign actor" : "no actor published there");
          return;
        }
        auto h = caf::actor_cast<directory_actor>(ptr);
        self->request(h, dial_timeout, hello_atom::value, self->state.ctx->cfg.node)
          .then([=](node_hello& hi) { on_hello(self, name, h, hi); },
                [=](caf::error& err) {
                  dial_failed(self, self->state.peers.at(name), self->system().render(err));
                });
      },
      [=](caf::error& err) {
        dial_failed(self, self->state.peers.at(name), self->system().render(err));
      });
}

// Over TLS: peer `name` dialed us and said hello; its directory comes
// from its peers actor `dialer` over that link, then the usual hello.
void linked(self_ptr self, const std::string& name, const caf::strong_actor_ptr& dialer) {
  auto& st = self->state;
  auto i = st.peers.find(name);
  if (i == st.peers.end() || i->second.node || i->second.dialing || !dialer)
    return;
  i->second.dialing = true;
  auto failed = [=](caf::error& err) {
    auto& p = self->state.peers.at(name);
    p.dialing = false;   // the dialer says hello again when it redials
    if (auto* m = self->state.ctx->metrics->peer(name))
      m->dial_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{}: peer {} dialed, but linking back failed ({})", self->state.ctx->cfg.node,
                 name, self->system().render(err));
  };
  self->request(caf::actor_cast<peers_actor>(dialer), dial_timeout, dir_atom::value)
    .then(
      [=](directory_actor& h) {
        if (!h) {
          caf::error err = make_error(errc::internal, "no directory");
          failed(err);
          return;
        }
        self->request(h, dial_timeout, hello_atom::value, self->state.ctx->cfg.node)
          .then([=](node_hello& hi) { on_hello(self, name, h, hi); }, failed);
      },
      failed);
}

void on_down(self_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  for (auto& [name, p] : st.peers) {
    if (!p.node || p.node.address() != dm.source)
      continue;
    p.last_dead = p.node.node();
    p.node = nullptr;
    st.ctx->dir->peer_down(name);
    mark(st.ctx, name, false);
    spdlog::warn("{}: peer {} is down ({})", st.ctx->cfg.node, name,
                 self->system().render(dm.reason));
    dial_later(self, p);
    return;
  }
}

} // namespace

peers_actor::behavior_type peers_fun(self_ptr self, const node_context* ctx,
                                     std::vector<peer> peers, directory_actor own) {
  auto& st = self->state;
  st.ctx = ctx;
  log_stray_errors(self);
  for (auto& p : peers)
    if (p.name != ctx->cfg.node)
      st.peers.emplace(p.name, peer_state{p, {}, {}, std::chrono::milliseconds(100), false});
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  for (auto& kv : st.peers)
    self->send(self, dial_atom::value, kv.first);
  return {
    [=](dial_atom, const std::string& name) { dial(self, name); },
    [=](linked_atom, const std::string& name, const caf::strong_actor_ptr& dialer) {
      linked(self, name, dialer);
    },
    [=](dir_atom) { return own; },
  };
}

} // namespace imengine
