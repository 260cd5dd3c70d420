#include "actors/api.hpp"

#include <chrono>
#include <string_view>
#include <vector>

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "engine/api_codec.hpp"
#include "engine/ids.hpp"
#include "engine/jwt.hpp"
#include "engine/rules.hpp"

namespace imengine {

namespace {

using self_ptr = api_actor::stateful_pointer<api_state>;
using promise = caf::typed_response_promise<api_response>;

constexpr auto request_timeout = std::chrono::seconds(30);   // as a connection's
// Longer than every request the actor makes for one call, so that the
// actor's own answer (an error included) arrives first.
constexpr auto bridge_timeout = std::chrono::seconds(40);
constexpr uint16_t disconnect_code = 4004;
const std::string api_device = "api";

// ---- the gateway

// connection.cpp's send_items for one message from `from`, which may be
// system_user. ok(send_ack&) after the commit, fail(error) otherwise.
template <class Ok, class Fail>
void gateway_send(self_ptr self, const std::string& from, const std::string& conv,
                  send_item item, Ok ok, Fail fail) {
  auto& st = self->state;
  if (!valid_user(from))
    return fail(make_error(errc::bad_frame, "malformed from"));
  auto c = parse_conv(conv);
  if (!c)
    return fail(make_error(errc::bad_frame, "malformed conv"));
  if (auto bad = check_send_item(item, st.ctx->cfg.max_frame))
    return fail(make_error(bad->code, bad->msg));
  // A dm's members follow from its id; a group's or room's own actor
  // checks membership, in mailbox order.
  if (from != system_user && c->kind == conv_kind::dm && !dm_member(*c, from))
    return fail(make_error(errc::forbidden, "not a member of " + c->name));
  with_conversation(
    self, st.ctx, &st.convs, *c,
    [=](const conversation_actor& h) mutable {
      std::vector<send_item> items;
      items.push_back(std::move(item));
      ask(self, self->state.ctx, h, request_timeout, send_atom::value, from, api_device,
          std::move(items))
        .then([=](send_ack& a) mutable { ok(a); }, [=](caf::error& e) mutable { fail(e); });
    },
    [=](const caf::error& e) mutable { fail(e); });
}

// ---- the HTTP endpoints. Each handler answers its call's promise.

struct call {
  api_target target;
  std::vector<std::string> params;   // the {} segments of the route's pattern
  std::string body;
  promise rp;
};

void answer(call& c, api_response r) {
  c.rp.deliver(std::move(r));
}

// A promise's error answer for a failed request.
auto answer_error(promise rp) {
  return [rp](const caf::error& e) mutable { rp.deliver(api_error(to_failure(e))); };
}

void on_send(self_ptr self, call& c, api_send& s) {
  auto rp = c.rp;
  gateway_send(
    self, s.from, s.conv, std::move(s.item),
    [rp](send_ack& a) mutable {
      rp.deliver(api_ok(api_send_result(a.conv, a.first_seq, a.mids.front(), a.ts, a.dup)));
    },
    answer_error(rp));
}

// Asks the group's actor for one membership change by `actor`.
template <class Ok>
void change_group(self_ptr self, const conv_id& g, group_op op, const std::string& actor,
                  std::vector<std::string> users, promise rp, Ok ok) {
  auto& st = self->state;
  with_conversation(
    self, st.ctx, &st.convs, g,
    [=](const conversation_actor& h) mutable {
      ask(self, self->state.ctx, h, request_timeout, group_atom::value, op, actor,
          std::move(users))
        .then([=](ok_atom) mutable { ok(); }, answer_error(rp));
    },
    answer_error(rp));
}

void on_group_create(self_ptr self, call& c, api_group_create& g) {
  auto rp = c.rp;
  change_group(self, *parse_conv(g.conv), group_op::create, g.owner, std::move(g.members), rp,
               [rp]() mutable { rp.deliver(api_ok(json::object())); });
}

// As the owner, whom the reader of the group's node names: adds, then
// removes (two membership messages, in that order).
void on_group_members(self_ptr self, call& c, api_members_change& m) {
  auto g = path_group(c.params[0]);
  if (!g)
    return answer(c, api_error(g.error()));
  auto rp = c.rp;
  auto& st = self->state;
  auto conv = *g;
  ask(self, st.ctx, st.ctx->dir->reader_of(conv.name), request_timeout, info_atom::value,
      std::string(system_user), conv.name)
    .then(
      [=](group_info& info) mutable {
        if (info.owner.empty()) {
          rp.deliver(api_error({errc::internal, conv.name + " has no owner"}));
          return;
        }
        auto owner = info.owner;
        auto remove = [=]() mutable {
          if (m.remove.empty())
            rp.deliver(api_ok(json::object()));
          else
            change_group(self, conv, group_op::remove, owner, m.remove, rp,
                         [rp]() mutable { rp.deliver(api_ok(json::object())); });
        };
        if (m.add.empty())
          remove();
        else
          change_group(self, conv, group_op::add, owner, m.add, rp, remove);
      },
      answer_error(rp));
}

void on_history(self_ptr self, call& c) {
  auto conv = path_conv(c.params[0]);
  if (!conv)
    return answer(c, api_error(conv.error()));
  auto r = parse_api_history(conv->name, c.target);
  if (!r)
    return answer(c, api_error(r.error()));
  history_query q{r->conv, r->after.value_or(0), r->before.value_or(0), r->before.has_value(),
                  r->limit};
  auto& st = self->state;
  auto rp = c.rp;
  ask(self, st.ctx, st.ctx->dir->reader_of(conv->name), request_timeout, history_atom::value,
      std::string(system_user), std::move(q))
    .then(
      [rp](message_page& page) mutable {
        rp.deliver(api_ok(api_history_result(page.items, page.more)));
      },
      answer_error(rp));
}

// The user's conversations on every node, merged as a client's convs.
void on_convs(self_ptr self, call& c) {
  auto user = path_user(c.params[0]);
  if (!user)
    return answer(c, api_error(user.error()));
  auto r = parse_api_convs(c.target);
  if (!r)
    return answer(c, api_error(r.error()));
  auto q = query_of(*r);
  auto rp = c.rp;
  ask_every_reader<conv_page>(
    self, self->state.ctx, request_timeout,
    [=](std::vector<conv_page>& pages) mutable {
      rp.deliver(api_ok(api_convs_result(merge_pages(std::move(pages), q.limit))));
    },
    answer_error(rp), convs_atom::value, *user, q);
}

void on_disconnect(self_ptr self, call& c) {
  auto user = path_user(c.params[0]);
  if (!user)
    return answer(c, api_error(user.error()));
  auto& st = self->state;
  auto rp = c.rp;
  with_user(
    self, st.ctx, &st.users, *user,
    [=](const user_actor& h) mutable {
      ask(self, self->state.ctx, h, request_timeout, disconnect_atom::value, disconnect_code)
        .then([rp](uint32_t n) mutable { rp.deliver(api_ok(json{{"closed", n}})); },
              answer_error(rp));
    },
    answer_error(rp));
}

void on_token(self_ptr self, call& c, api_token_req& t) {
  const auto& cfg = self->state.ctx->cfg;
  if (cfg.auth != "jwt")
    return answer(c, api_error({errc::bad_frame, "tokens need --auth=jwt"}));
  if (cfg.jwt_max_ttl > 0 && t.ttl_s > cfg.jwt_max_ttl)   // it would be refused at login
    return answer(c, api_error({errc::bad_frame, "ttl_s over --jwt-max-ttl="
                                                   + std::to_string(cfg.jwt_max_ttl)}));
  auto exp = now_ms() / 1000 + static_cast<int64_t>(t.ttl_s);
  auto token = make_jwt(t.sub, exp, cfg.jwt_secret);
  if (token.empty())
    return answer(c, api_error({errc::internal, "signing failed"}));
  answer(c, api_ok(json{{"token", token}, {"exp", exp}}));
}

// ---- the routing table: (method, path pattern) -> handler

using handler_fn = void (*)(self_ptr, call&);

struct api_route {
  std::string_view method;
  std::string_view pattern;   // {} matches one segment
  handler_fn handle;
};

// Parses the body into Req, then hands it to Handle; a parse failure is
// answered with its error.
template <class Req, result<Req> (*Parse)(const json&), void (*Handle)(self_ptr, call&, Req&)>
void parsed(self_ptr self, call& c) {
  auto body = parse_body(c.body);
  if (!body)
    return answer(c, api_error(body.error()));
  auto r = Parse(*body);
  if (!r)
    return answer(c, api_error(r.error()));
  Handle(self, c, *r);
}

const std::vector<api_route>& api_routes() {
  static const std::vector<api_route> routes{
    {"POST", "/api/v1/messages", parsed<api_send, parse_api_send, on_send>},
    {"POST", "/api/v1/groups",
     parsed<api_group_create, parse_api_group_create, on_group_create>},
    {"POST", "/api/v1/groups/{}/members",
     parsed<api_members_change, parse_api_members_change, on_group_members>},
    {"GET", "/api/v1/conversations/{}/messages", on_history},
    {"GET", "/api/v1/users/{}/convs", on_convs},
    {"POST", "/api/v1/users/{}/disconnect", on_disconnect},
    {"POST", "/api/v1/tokens", parsed<api_token_req, parse_api_token, on_token>},
  };
  return routes;
}

caf::result<api_response> handle_http(self_ptr self, api_request& req) {
  auto target = parse_target(req.target);
  if (!target)
    return api_error(target.error());
  bool path_known = false;
  for (const auto& route : api_routes()) {
    std::vector<std::string> params;
    if (!match_path(route.pattern, target->path, params))
      continue;
    path_known = true;
    if (route.method != req.method)
      continue;
    call c{std::move(*target), std::move(params), std::move(req.body),
           self->make_response_promise<api_response>()};
    route.handle(self, c);
    return c.rp;
  }
  if (path_known)
    return api_error({errc::bad_frame, req.method + " is not allowed here"}, 405);
  return api_error({errc::not_found, "no such endpoint"});
}

} // namespace

api_actor::behavior_type api_fun(self_ptr self, const node_context* ctx) {
  self->state.ctx = ctx;
  log_stray_errors(self);
  return {
    [=](send_atom, std::string& from, std::string& conv,
        send_item& item) -> caf::result<send_ack> {
      auto rp = self->make_response_promise<send_ack>();
      gateway_send(
        self, from, conv, std::move(item), [rp](send_ack& a) mutable { rp.deliver(a); },
        [rp](const caf::error& e) mutable { rp.deliver(e); });
      return rp;
    },
    [=](http_atom, api_request& req) { return handle_http(self, req); },
  };
}

namespace {

// A short-lived actor per request: the answer comes back as a response to
// it, and net/ gets it through `done`. Its state comes as spawn arguments:
// a function actor without any makes CAF 0.17 bind a reference to a null
// tuple (undefined behaviour, UBSan reports it).
void api_call_fun(caf::event_based_actor* self, api_actor api, api_request req,
                  std::function<void(api_response)> done) {
  self->request(api, bridge_timeout, http_atom::value, std::move(req))
    .then([done](api_response& r) { done(std::move(r)); },
          [done](caf::error& e) { done(api_error(to_failure(e))); });
}

} // namespace

void call_api(caf::actor_system& sys, const api_actor& api, api_request req,
              std::function<void(api_response)> done) {
  sys.spawn(api_call_fun, api, std::move(req), std::move(done));
}

} // namespace imengine
