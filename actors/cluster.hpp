#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "engine/cluster.hpp"

namespace imengine {

struct node_context;

// The directory actor, published on the cluster port: peers ask it for the
// actors this node owns, spawning them on first use. A request for what
// this node does not own is refused: the node lists disagree.
directory_actor::behavior_type directory_fun(directory_actor::pointer self,
                                             const node_context* ctx);

using dial_atom = caf::atom_constant<caf::atom("dial")>;     // (re)connect to a peer
using linked_atom = caf::atom_constant<caf::atom("linked")>; // a peer dialed us (TLS)
using dir_atom = caf::atom_constant<caf::atom("dir")>;       // your directory actor?

// One per node in a cluster: keeps a link to every configured peer.
// Over TLS only the node with the smaller name dials: with caf-openssl
// 0.17.6 the second link of a pair (both ends dialing, which plain links
// survive) took the first one down with it, every time (the stale OpenSSL
// error that engine/node/openssl_shim.cpp now clears; one TLS handshake
// per pair is kept all the same). The dialed node
// hears of the dialer through its directory's hello (linked_atom with the
// dialer's peers actor) and asks that actor for its directory over the
// link that exists.
using peers_actor = caf::typed_actor<caf::reacts_to<dial_atom, std::string>,
                                     caf::reacts_to<linked_atom, std::string, caf::strong_actor_ptr>,
                                     caf::replies_to<dir_atom>::with<directory_actor>>;

// The name the peers actor is registered under, for the directory's hello.
constexpr caf::atom_value peers_registry_name = caf::atom("peers");

struct peer_state {
  peer cfg;
  directory_actor node;                  // valid while up
  caf::node_id last_dead;           // a connect that returns it again is stale
  std::chrono::milliseconds backoff{100};
  bool dialing = false;
  bool failing = false;                  // the last dial failed (logged once per run)
};

struct peers_state {
  const node_context* ctx = nullptr;
  std::unordered_map<std::string, peer_state> peers;
  static inline const char* name = "peers";
};

// Dials every peer through CAF's middleman (asynchronously: no scheduler
// thread blocks), says hello, watches the link: when the peer's node
// actor goes down (the process died or the link broke) the peer is marked
// down and dialed again with backoff (100 ms doubling to 2 s). When a
// peer comes up, the live timeline conversations here resend their
// membership to its fanout actor.
peers_actor::behavior_type peers_fun(peers_actor::stateful_pointer<peers_state> self,
                                     const node_context* ctx, std::vector<peer> peers,
                                     directory_actor own);

} // namespace imengine
