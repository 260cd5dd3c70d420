#pragma once

#include <functional>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/route.hpp"

namespace imengine {

struct node_context;

struct api_state {
  const node_context* ctx = nullptr;
  lookups<conversation_actor> convs;   // conversations on other nodes
  lookups<user_actor> users;           // users on other nodes (disconnect)
  static inline const char* name = "api";
};

// One per node: the server API (docs/API.md) and the gateway.
//
// The gateway (send_atom) is the one way into a conversation that is not a
// client connection: the server API's POST /api/v1/messages and plugin
// bots. It makes the checks connection.cpp makes of a client `send` (a dm
// names its sender; a group's or room's own actor checks membership, in
// mailbox order) and asks the conversation actor on its owner node, so a
// message sent here is ordered, durable before its ack and deduplicated
// by (from, cmid) like any client's. system_user needs no membership.
// Messages sent here come from device "api".
//
// An http_atom request is routed by one table (method, path pattern ->
// handler, see api.cpp); bodies and parameters are parsed and checked in
// engine/api_codec.cpp. The API is privileged: it reads as system_user
// (the reader lets it read any conversation) and changes a group's
// members as the group's owner, which it looks up first.
api_actor::behavior_type api_fun(api_actor::stateful_pointer<api_state> self,
                                 const node_context* ctx);

// Hands one request from net/ to the node's api actor and its answer to
// `done`, on a CAF thread; a failed request (the actor is gone, or it did
// not answer in time) is answered with its error (503 unavailable).
void call_api(caf::actor_system& sys, const api_actor& api, api_request req,
              std::function<void(api_response)> done);

} // namespace imengine
