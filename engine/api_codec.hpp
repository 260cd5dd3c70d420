#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/api_types.hpp"
#include "engine/error.hpp"
#include "engine/frame.hpp"
#include "engine/ids.hpp"
#include "engine/result.hpp"

// The server API's pure half (docs/API.md): request targets and bodies,
// parsed and validated the way engine/frame.cpp validates client frames
// (its parsers are reused where the fields are the same), the mapping of
// protocol errors to HTTP statuses, and the JSON of every answer. No CAF,
// no Beast: unit-tested on its own.
namespace imengine {

// A request target split up: the path's segments, percent-decoded
// ("/api/v1/users/alice/convs" -> api, v1, users, alice, convs), and the
// query's parameters (the last of a repeated name wins).
struct api_target {
  std::vector<std::string> path;
  std::map<std::string, std::string> query;
};

// Errors: bad_frame (not an absolute path, a malformed percent escape).
result<api_target> parse_target(std::string_view target);

// Whether `path` matches `pattern`, e.g. "/api/v1/users/{}/convs"; each
// `{}` matches one segment, appended to `params`.
bool match_path(std::string_view pattern, const std::vector<std::string>& path,
                std::vector<std::string>& params);

// The body as a JSON object. Errors: bad_frame (not JSON, not an object,
// nested deeper than 64 levels).
result<json> parse_body(std::string_view body);

// POST /api/v1/messages. `from` is a valid user id or system_user; the
// rest is a client `send` (parse_send), `mentions` included.
struct api_send {
  std::string from;
  std::string conv;
  send_item item;
};
result<api_send> parse_api_send(const json& body);

// The checks parse_send makes of a message, for one that did not come
// as JSON (a plugin bot's send through the gateway): cmid, type, ex an
// object or empty, prio 0 or 1, and all of it within `max_bytes`.
// Errors: bad_frame, too_large.
std::optional<failure> check_send_item(const send_item& item, size_t max_bytes);

// POST /api/v1/groups: a client group_create (parse_members) plus its
// owner, which must be a user, not system_user.
struct api_group_create {
  std::string conv;
  std::string owner;
  std::vector<std::string> members;
};
result<api_group_create> parse_api_group_create(const json& body);

// POST /api/v1/groups/<conv>/members: `add` and `remove`, each optional,
// at least one present.
struct api_members_change {
  std::vector<std::string> add, remove;
};
result<api_members_change> parse_api_members_change(const json& body);

// POST /api/v1/tokens.
struct api_token_req {
  std::string sub;         // a user, not system_user
  uint64_t ttl_s = 3600;   // 1..max_token_ttl_s
};
constexpr uint64_t max_token_ttl_s = 366ull * 24 * 3600;
result<api_token_req> parse_api_token(const json& body);

// Path parameters: a conversation (any kind, or a g: one) and a user.
// Errors: bad_frame.
result<conv_id> path_conv(std::string_view s);
result<conv_id> path_group(std::string_view s);
result<std::string> path_user(std::string_view s);

// GET .../messages?after=N&before=N&limit=M, as a client `history`
// (after and before exclusive and mutually exclusive; limit 1..1000,
// default 50).
result<history_req> parse_api_history(std::string conv, const api_target& t);

// GET /users/<u>/convs?limit=M&cursor=C, as a client `convs` (limit
// 1..200, default 50; cursor as a convs_result's `next`).
result<convs_req> parse_api_convs(const api_target& t);

// An optional `limit` query parameter, clamped to 1..max_page.
result<uint32_t> parse_api_limit(const api_target& t, uint32_t def);

// ---- answers

// bad_frame 400, unauthorized 401, forbidden 403, not_found 404,
// too_large 413, rejected 422, rate_limited 429, storage and internal
// 500, unavailable and overloaded 503 (docs/API.md).
uint16_t http_status(errc code) noexcept;

// {"error":"<code>","msg":".."} with the code's status, or `status`.
api_response api_error(const failure& f);
api_response api_error(const failure& f, uint16_t status);
std::string api_error_body(errc code, std::string_view msg);

// 200 with a JSON body.
api_response api_ok(const json& body);

// The answer of a committed send: {"conv","seq","mid","ts"} (+ "dup":true).
json api_send_result(std::string_view conv, uint64_t seq, uint64_t mid, int64_t ts, bool dup);

// A page of a conversation: {"msgs":[..],"more":bool}, each message as in
// a client's history_result.
json api_history_result(const std::vector<message>& msgs, bool more);

// A page of a user's conversations: a client's convs_result without t/req.
json api_convs_result(const conv_page& page);

} // namespace imengine
