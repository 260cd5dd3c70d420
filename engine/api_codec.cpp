#include "engine/api_codec.hpp"

#include <algorithm>
#include <charconv>

#include "engine/amend.hpp"
#include "engine/ids.hpp"
#include "engine/mentions.hpp"
#include "engine/rules.hpp"

namespace imengine {

namespace {

failure bad(std::string msg) {
  return failure{errc::bad_frame, std::move(msg)};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes decoded; `plus_space` for query strings (form encoding).
std::optional<std::string> percent_decode(std::string_view s, bool plus_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size())
        return std::nullopt;
      auto hi = hex_value(s[i + 1]);
      auto lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

// Deeper bodies are refused: dump() and copies recurse (engine/frame.cpp
// refuses deep frames for the same reason).
constexpr int max_depth = 64;

// An optional array of valid user ids, none of them system_user.
void read_users(const json& obj, const char* key, std::vector<std::string>& out,
                std::optional<failure>& err, bool& present) {
  present = false;
  if (err)
    return;
  auto i = obj.find(key);
  if (i == obj.end())
    return;
  present = true;
  if (!i->is_array()) {
    err = bad(std::string("field '") + key + "' must be an array");
    return;
  }
  if (i->size() > max_members) {
    err = bad(std::string("field '") + key + "' must have 0.." + std::to_string(max_members)
              + " elements");
    return;
  }
  for (size_t n = 0; n < i->size(); ++n) {
    const auto& u = (*i)[n];
    auto elem = std::string(key) + "[" + std::to_string(n) + "]";
    if (!u.is_string()) {
      err = bad("field '" + elem + "' must be a string");
      return;
    }
    const auto& s = u.get_ref<const std::string&>();
    if (!valid_user(s)) {
      err = bad("malformed user in '" + elem + "'");
      return;
    }
    if (reserved_user(s)) {
      err = bad("'" + s + "' in '" + elem + "' is reserved for the server");
      return;
    }
    out.push_back(s);
  }
}

// A required string field holding a user id that is not system_user.
std::optional<failure> read_person(const json& obj, const char* key, std::string& out) {
  auto i = obj.find(key);
  if (i == obj.end())
    return bad(std::string("missing field '") + key + "'");
  if (!i->is_string())
    return bad(std::string("field '") + key + "' must be a string");
  const auto& s = i->get_ref<const std::string&>();
  if (!valid_user(s))
    return bad(std::string("malformed ") + key);
  if (reserved_user(s))
    return bad(std::string("field '") + key + "' may not be " + s);
  out = s;
  return std::nullopt;
}

// An optional non-negative integer query parameter, decimal digits only.
result<std::optional<uint64_t>> query_uint(const api_target& t, const char* key) {
  auto i = t.query.find(key);
  if (i == t.query.end())
    return std::optional<uint64_t>{};
  const auto& s = i->second;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
    return bad(std::string("parameter '") + key + "' must be a non-negative integer");
  return std::optional<uint64_t>{v};
}

} // namespace

// ---- targets

result<api_target> parse_target(std::string_view target) {
  if (target.empty() || target.front() != '/')
    return bad("the target must be an absolute path");
  api_target out;
  auto q = target.find('?');
  auto path = target.substr(0, q);
  if (q != std::string_view::npos) {
    auto query = target.substr(q + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      auto pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      if (pair.empty())
        continue;
      auto eq = pair.find('=');
      auto name = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(eq == std::string_view::npos ? std::string_view{}
                                                               : pair.substr(eq + 1),
                                  true);
      if (!name || !value)
        return bad("malformed percent escape in the query");
      out.query[*name] = *value;
    }
  }
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    auto seg = percent_decode(path.substr(0, slash), false);
    if (!seg)
      return bad("malformed percent escape in the path");
    out.path.push_back(std::move(*seg));
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
  }
  if (!out.path.empty() && out.path.back().empty())
    out.path.pop_back();   // a trailing slash names the same resource
  return out;
}

bool match_path(std::string_view pattern, const std::vector<std::string>& path,
                std::vector<std::string>& params) {
  if (!pattern.empty() && pattern.front() == '/')
    pattern.remove_prefix(1);
  std::vector<std::string> found;
  size_t i = 0;
  while (true) {
    auto slash = pattern.find('/');
    auto seg = pattern.substr(0, slash);
    if (i >= path.size())
      return false;
    if (seg == "{}")
      found.push_back(path[i]);
    else if (seg != path[i])
      return false;
    ++i;
    if (slash == std::string_view::npos)
      break;
    pattern.remove_prefix(slash + 1);
  }
  if (i != path.size())
    return false;
  params.insert(params.end(), found.begin(), found.end());
  return true;
}

// ---- bodies

result<json> parse_body(std::string_view body) {
  bool too_deep = false;
  json::parser_callback_t depth_guard = [&](int depth, json::parse_event_t, json&) {
    if (depth > max_depth)
      too_deep = true;
    return true;
  };
  auto doc = json::parse(body.begin(), body.end(), depth_guard, false);
  if (too_deep)
    return bad("nested deeper than " + std::to_string(max_depth) + " levels");
  if (doc.is_discarded())
    return bad("the body is not valid JSON");
  if (!doc.is_object())
    return bad("the body must be a JSON object");
  return doc;
}

result<api_send> parse_api_send(const json& body) {
  api_send out;
  auto from = body.find("from");
  if (from == body.end())
    return bad("missing field 'from'");
  if (!from->is_string())
    return bad("field 'from' must be a string");
  out.from = from->get<std::string>();
  if (!valid_user(out.from))
    return bad("malformed from");
  auto send = parse_send(body);
  if (!send)
    return send.error();
  out.conv = std::move(send->conv);
  out.item = std::move(send->item);
  return out;
}

std::optional<failure> check_send_item(const send_item& item, size_t max_bytes) {
  if (!valid_cmid(item.cmid))
    return bad("malformed cmid");
  if (item.type.empty() || item.type.size() > 64 || reserved_type(item.type))
    return bad("malformed type (1-64 bytes; system, recall and edit are the engine's)");
  if (item.mentions.size() > max_mentions)
    return bad("more than " + std::to_string(max_mentions) + " mentions");
  if (item.prio > 1)
    return bad("field 'prio' must be an integer from 0 to 1");
  if (!item.ex.empty() && !json::parse(item.ex, nullptr, false).is_object())
    return bad("field 'ex' must be an object");
  if (item.cmid.size() + item.type.size() + item.body.size() + item.ex.size() > max_bytes)
    return failure{errc::too_large, "message over " + std::to_string(max_bytes) + " bytes"};
  return std::nullopt;
}

result<api_group_create> parse_api_group_create(const json& body) {
  api_group_create out;
  if (auto err = read_person(body, "owner", out.owner))
    return *err;
  auto members = parse_members(body);
  if (!members)
    return members.error();
  for (const auto& m : members->members)
    if (reserved_user(m))
      return bad("'" + m + "' in 'members' is reserved for the server");
  out.conv = std::move(members->conv);
  out.members = std::move(members->members);
  return out;
}

result<api_members_change> parse_api_members_change(const json& body) {
  api_members_change out;
  std::optional<failure> err;
  bool has_add = false, has_remove = false;
  read_users(body, "add", out.add, err, has_add);
  read_users(body, "remove", out.remove, err, has_remove);
  if (err)
    return *err;
  if (!has_add && !has_remove)
    return bad("give 'add', 'remove' or both");
  return out;
}

result<api_token_req> parse_api_token(const json& body) {
  api_token_req out;
  if (auto err = read_person(body, "sub", out.sub))
    return *err;
  if (auto ttl = body.find("ttl_s"); ttl != body.end()) {
    std::optional<uint64_t> v;
    if (ttl->is_number_unsigned())
      v = ttl->get<uint64_t>();
    else if (ttl->is_number_integer() && ttl->get<int64_t>() >= 0)
      v = static_cast<uint64_t>(ttl->get<int64_t>());
    if (!v || *v < 1 || *v > max_token_ttl_s)
      return bad("field 'ttl_s' must be an integer from 1 to " + std::to_string(max_token_ttl_s));
    out.ttl_s = *v;
  }
  return out;
}

result<conv_id> path_conv(std::string_view s) {
  auto c = parse_conv(s);
  if (!c)
    return bad("malformed conv");
  return std::move(*c);
}

result<conv_id> path_group(std::string_view s) {
  auto c = parse_conv(s);
  if (!c || c->kind != conv_kind::group)
    return bad("malformed conv (must be a g: id)");
  return std::move(*c);
}

result<std::string> path_user(std::string_view s) {
  if (!valid_user(s))
    return bad("malformed user");
  return std::string(s);
}

result<history_req> parse_api_history(std::string conv, const api_target& t) {
  history_req out;
  out.conv = std::move(conv);
  auto after = query_uint(t, "after");
  if (!after)
    return after.error();
  auto before = query_uint(t, "before");
  if (!before)
    return before.error();
  if (*after && *before)
    return bad("parameters 'after' and 'before' are mutually exclusive");
  out.after = *after;
  out.before = *before;
  auto limit = parse_api_limit(t, out.limit);
  if (!limit)
    return limit.error();
  out.limit = *limit;
  return out;
}

result<uint32_t> parse_api_limit(const api_target& t, uint32_t def) {
  auto limit = query_uint(t, "limit");
  if (!limit)
    return limit.error();
  return static_cast<uint32_t>(std::clamp<uint64_t>(limit->value_or(def), 1, max_page));
}

result<convs_req> parse_api_convs(const api_target& t) {
  convs_req out;
  auto limit = parse_api_limit(t, out.limit);
  if (!limit)
    return limit.error();
  out.limit = std::min(*limit, max_convs_page);
  if (auto i = t.query.find("cursor"); i != t.query.end()) {
    out.after = decode_cursor(i->second);
    if (!out.after)
      return bad("malformed cursor");
  }
  return out;
}

// ---- answers

json api_convs_result(const conv_page& page) {
  auto out = convs_result_frame(std::nullopt, page.rows, page.more);
  out.erase("t");
  return out;
}

uint16_t http_status(errc code) noexcept {
  switch (code) {
    case errc::none: return 200;
    case errc::bad_frame:
    case errc::unknown_type: return 400;
    case errc::unauthorized: return 401;
    case errc::forbidden: return 403;
    case errc::not_found: return 404;
    case errc::too_large: return 413;
    case errc::rejected: return 422;
    case errc::rate_limited: return 429;
    case errc::unavailable:
    case errc::overloaded: return 503;
    case errc::storage:
    case errc::internal:
    case errc::bad_config: return 500;
  }
  return 500;
}

std::string api_error_body(errc code, std::string_view msg) {
  return json{{"error", to_string(code)}, {"msg", msg}}.dump(-1, ' ', false,
                                                          json::error_handler_t::replace);
}

api_response api_error(const failure& f) {
  return api_error(f, http_status(f.code));
}

api_response api_error(const failure& f, uint16_t status) {
  return api_response{status, api_error_body(f.code, f.msg)};
}

api_response api_ok(const json& body) {
  return api_response{200, body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

json api_send_result(std::string_view conv, uint64_t seq, uint64_t mid, int64_t ts, bool dup) {
  json out{{"conv", conv}, {"seq", seq}, {"mid", std::to_string(mid)}, {"ts", ts}};
  if (dup)
    out["dup"] = true;
  return out;
}

json api_history_result(const std::vector<message>& msgs, bool more) {
  auto list = json::array();
  for (const auto& m : msgs)
    list.push_back(msg_frame(m, std::nullopt));
  return json{{"msgs", std::move(list)}, {"more", more}};
}

} // namespace imengine
