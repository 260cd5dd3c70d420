#include "engine/frame.hpp"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "engine/amend.hpp"
#include "engine/ids.hpp"
#include "engine/mentions.hpp"

namespace imengine {

namespace {

// ---- decoding ---------------------------------------------------------------

// Deeper frames are refused as the parse reaches that depth: nlohmann's
// msgpack reader, dump(), to_msgpack() and copies all recurse, so a 64 KiB
// frame of nested arrays could otherwise exhaust an actor thread's stack.
constexpr size_t max_depth = 64;

// nlohmann's own DOM builder, fed through a depth check: one pass over
// the bytes builds the object and refuses a frame nested too deep before
// any of that depth exists.
class depth_checked_dom {
public:
  explicit depth_checked_dom(json& out) : dom_(out, false) {}

  bool too_deep() const { return too_deep_; }

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(size_t n) { return enter() && dom_.start_object(n); }
  bool key(json::string_t& k) { return dom_.key(k); }
  bool end_object() { return leave() && dom_.end_object(); }
  bool start_array(size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() { return leave() && dom_.end_array(); }
  bool parse_error(size_t pos, const std::string& token, const nlohmann::detail::exception& e) {
    return dom_.parse_error(pos, token, e);
  }

private:
  bool enter() {
    if (++depth_ > max_depth) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  size_t depth_ = 0;
  bool too_deep_ = false;
};

failure bad(std::string msg) {
  return failure{errc::bad_frame, std::move(msg)};
}

// Parses without throwing; nullopt when the bytes are no valid document.
std::optional<json> parse_bytes(std::string_view data, encoding enc, std::string& why) {
  try {
    json doc;
    depth_checked_dom sax(doc);
    auto fmt = enc == encoding::json ? json::input_format_t::json
                                     : json::input_format_t::msgpack;
    if (json::sax_parse(data.begin(), data.end(), &sax, fmt))
      return doc;
    why = sax.too_deep() ? "nested deeper than " + std::to_string(max_depth) + " levels"
          : enc == encoding::json ? "not valid JSON"
                                  : "not valid msgpack";
    return std::nullopt;
  } catch (const std::exception&) {
    why = enc == encoding::json ? "not valid JSON" : "not valid msgpack";
    return std::nullopt;
  }
}

// A wire integer that fits int64: JSON gives non-negative numbers the
// unsigned type, msgpack may give them either type.
std::optional<int64_t> as_int64(const json& v) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer())
    return v.get<int64_t>();
  return std::nullopt;
}

// ---- typed field reading ----------------------------------------------------

using validator = bool (*)(std::string_view);

bool any_string(std::string_view) { return true; }
bool valid_conv(std::string_view s) { return parse_conv(s).has_value(); }
bool valid_type(std::string_view s) { return !s.empty() && s.size() <= 64; }

enum class need { required, optional };

// Reads the fields of one object (a frame or a batch item). Every getter is
// a no-op after the first error, so a parse_* is a straight list of reads
// followed by `finish`, which reports the first error.
class field_reader {
public:
  explicit field_reader(const json& obj, std::string prefix = {})
    : obj_(obj), prefix_(std::move(prefix)) {
    if (!obj_.is_object())
      fail(prefix_.empty() ? "frame must be an object" : prefix_ + " must be an object");
  }

  bool ok() const noexcept { return !err_; }

  // A string; `check` validates its content, `what` names it in the error.
  void str(const char* key, std::string& out, need n = need::required,
           validator check = any_string, const char* what = nullptr) {
    auto v = find(key, n);
    if (!v)
      return;
    if (!v->is_string())
      return fail("field '" + name(key) + "' must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (!check(s)) {
      auto msg = "malformed " + std::string{what ? what : key};
      return fail(prefix_.empty() ? msg : msg + " in '" + name(key) + "'");
    }
    out = s;
  }

  // An integer in 0..max; floats are not integers, even 1.0.
  void uint(const char* key, uint64_t& out, need n = need::required,
            uint64_t max = std::numeric_limits<uint64_t>::max()) {
    auto v = find(key, n);
    if (!v)
      return;
    std::optional<uint64_t> u;
    if (v->is_number_unsigned())
      u = v->get<uint64_t>();
    else if (v->is_number_integer() && v->get<int64_t>() >= 0)
      u = static_cast<uint64_t>(v->get<int64_t>());
    if (u && *u <= max)
      out = *u;
    else if (max == std::numeric_limits<uint64_t>::max())
      fail("field '" + name(key) + "' must be a non-negative integer");
    else
      fail("field '" + name(key) + "' must be an integer from 0 to " + std::to_string(max));
  }

  void uint(const char* key, std::optional<uint64_t>& out) {
    if (!present(key))
      return;
    uint64_t v = 0;
    uint(key, v);
    if (ok())
      out = v;
  }

  // An optional page size, clamped to 1..max.
  void limit(const char* key, uint32_t& out, uint32_t max = max_page) {
    uint64_t v = out;
    uint(key, v, need::optional);
    if (ok())
      out = static_cast<uint32_t>(std::clamp<uint64_t>(v, 1, max));
  }

  void boolean(const char* key, bool& out, need n = need::required) {
    auto v = find(key, n);
    if (!v)
      return;
    if (!v->is_boolean())
      return fail("field '" + name(key) + "' must be true or false");
    out = v->get<bool>();
  }

  // An optional object, kept as its JSON text ("" when absent).
  void object_text(const char* key, std::string& out) {
    auto v = find(key, need::optional);
    if (!v)
      return;
    if (!v->is_object())
      return fail("field '" + name(key) + "' must be an object");
    out = v->dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // A required array of 1..max_size (or 0..max_size) elements.
  const json* array(const char* key, size_t min_size, size_t max_size) {
    auto v = find(key, need::required);
    if (!v)
      return nullptr;
    if (!v->is_array()) {
      fail("field '" + name(key) + "' must be an array");
      return nullptr;
    }
    if (v->size() < min_size || v->size() > max_size) {
      fail("field '" + name(key) + "' must have " + std::to_string(min_size) + ".."
           + std::to_string(max_size) + " elements");
      return nullptr;
    }
    return v;
  }

  // A required array of valid user ids (or what `check` accepts).
  void users(const char* key, std::vector<std::string>& out, size_t max_size,
             validator check = valid_user) {
    auto arr = array(key, 0, max_size);
    if (!arr)
      return;
    for (size_t i = 0; i < arr->size() && ok(); ++i) {
      const auto& u = (*arr)[i];
      auto elem = name(key) + "[" + std::to_string(i) + "]";
      if (!u.is_string())
        fail("field '" + elem + "' must be a string");
      else if (!check(u.get_ref<const std::string&>()))
        fail("malformed user in '" + elem + "'");
      else
        out.push_back(u.get<std::string>());
    }
  }

  // An optional `mentions`: user ids or "@all", at most max_mentions.
  void mentions(const char* key, std::vector<std::string>& out) {
    if (present(key))
      users(key, out, max_mentions, [](std::string_view s) {
        return s == mention_all || valid_user(s);
      });
  }

  void fail(std::string msg) {
    if (!err_)
      err_ = bad(std::move(msg));
  }

  template <class T>
  result<T> finish(T value) {
    if (err_)
      return *err_;
    return value;
  }

  const failure& error() const { return *err_; }

private:
  bool present(const char* key) const {
    return ok() && obj_.find(key) != obj_.end();
  }

  std::string name(const char* key) const {
    return prefix_.empty() ? key : prefix_ + "." + key;
  }

  const json* find(const char* key, need n) {
    if (!ok())
      return nullptr;
    auto i = obj_.find(key);
    if (i == obj_.end()) {
      if (n == need::required)
        fail("missing field '" + name(key) + "'");
      return nullptr;
    }
    return &*i;
  }

  const json& obj_;
  std::string prefix_;
  std::optional<failure> err_;
};

// A type a client may send: not one the engine writes itself.
bool client_type(std::string_view s) { return valid_type(s) && !reserved_type(s); }

// The message fields shared by `send` (top level) and `send_batch` items.
void read_item(field_reader& r, send_item& item) {
  r.str("cmid", item.cmid, need::required, valid_cmid);
  r.str("type", item.type, need::optional, client_type,
        "type (1-64 bytes; system, recall and edit are the engine's)");
  r.str("body", item.body);
  r.object_text("ex", item.ex);
  uint64_t prio = 0;
  r.uint("prio", prio, need::optional, 1);
  item.prio = static_cast<uint8_t>(prio);
  r.mentions("mentions", item.mentions);
}

json with_req(json obj, req_id req) {
  if (req)
    obj["req"] = *req;
  return obj;
}

size_t slot_of(const std::vector<std::string_view>& types, std::string_view type) {
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == type)
      return i;
  return types.size();
}

} // namespace

const std::vector<std::string_view>& client_frame_types() {
  static const std::vector<std::string_view> types{
    "ping", "auth", "send", "send_batch", "ack", "sync", "history", "read", "unread",
    "convs", "mute", "recall", "edit", "typing", "presence_sub", "group_create",
    "group_add", "group_remove", "group_info", "join", "leave"};
  return types;
}

const std::vector<std::string_view>& server_frame_types() {
  static const std::vector<std::string_view> types{
    "auth_ok", "ack", "ack_batch", "msg", "ok", "error", "pong", "sync_result",
    "history_result", "unread_result", "convs_result", "group_info_result", "read",
    "receipt", "mute", "mention", "typing", "presence", "notify"};
  return types;
}

size_t client_frame_slot(std::string_view type) {
  return slot_of(client_frame_types(), type);
}

size_t server_frame_slot(std::string_view type) {
  return slot_of(server_frame_types(), type);
}

json ex_object(const std::string& text) {
  if (text.empty())
    return json::object();
  auto v = json::parse(text, nullptr, false);
  return v.is_object() ? v : json::object();
}

// ---- codec --------------------------------------------------------------------

result<json> decode_frame(std::string_view data, encoding enc) {
  std::string why;
  auto doc = parse_bytes(data, enc, why);
  if (!doc)
    return bad(why);
  if (!doc->is_object())
    return bad("frame must be an object");
  auto t = doc->find("t");
  if (t == doc->end())
    return bad("missing field 't'");
  if (!t->is_string())
    return bad("field 't' must be a string");
  auto req = doc->find("req");
  if (req != doc->end()) {
    if (!req->is_number_integer())
      return bad("field 'req' must be an integer");
    if (!as_int64(*req))
      return bad("field 'req' is out of range");
  }
  return std::move(*doc);
}

std::string encode_frame(const json& obj, encoding enc) {
  try {
    if (enc == encoding::msgpack) {
      std::string out;
      json::to_msgpack(obj, nlohmann::detail::output_adapter<char>(out));
      return out;
    }
    // replace: a msgpack client may have sent bytes that are not UTF-8.
    return obj.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception&) {
    return {};   // only bad_alloc can land here
  }
}

std::optional<int64_t> request_id(const json& frame) {
  if (!frame.is_object())
    return std::nullopt;
  auto req = frame.find("req");
  return req == frame.end() ? std::nullopt : as_int64(*req);
}

// ---- client frames --------------------------------------------------------------

result<auth_req> parse_auth(const json& f) {
  field_reader r{f};
  auth_req out;
  r.str("user", out.user, need::required, valid_user);
  r.str("device", out.device, need::required, valid_device);
  r.str("token", out.token, need::optional);
  return r.finish(std::move(out));
}

result<send_req> parse_send(const json& f) {
  field_reader r{f};
  send_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  read_item(r, out.item);
  return r.finish(std::move(out));
}

result<send_batch_req> parse_send_batch(const json& f) {
  field_reader r{f};
  send_batch_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  auto msgs = r.array("msgs", 1, max_batch);
  if (!msgs)
    return r.finish(std::move(out));
  std::unordered_set<std::string> cmids;
  for (size_t i = 0; i < msgs->size(); ++i) {
    field_reader item_reader{(*msgs)[i], "msgs[" + std::to_string(i) + "]"};
    send_item item;
    read_item(item_reader, item);
    if (!item_reader.ok())
      return item_reader.error();
    if (!cmids.insert(item.cmid).second)
      return bad("duplicate cmid '" + item.cmid + "' in batch");
    out.items.push_back(std::move(item));
  }
  return out;
}

result<ack_req> parse_ack(const json& f) {
  field_reader r{f};
  ack_req out;
  r.uint("iseq", out.iseq);
  return r.finish(out);
}

result<sync_req> parse_sync(const json& f) {
  field_reader r{f};
  sync_req out;
  r.uint("after", out.after, need::optional);
  r.limit("limit", out.limit);
  return r.finish(out);
}

result<history_req> parse_history(const json& f) {
  field_reader r{f};
  history_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  r.uint("after", out.after);
  r.uint("before", out.before);
  r.limit("limit", out.limit);
  if (r.ok() && out.after && out.before)
    r.fail("fields 'after' and 'before' are mutually exclusive");
  return r.finish(std::move(out));
}

result<convs_req> parse_convs(const json& f) {
  field_reader r{f};
  convs_req out;
  r.limit("limit", out.limit, max_convs_page);
  std::string cursor;
  r.str("cursor", cursor, need::optional);
  if (r.ok() && !cursor.empty()) {
    out.after = decode_cursor(cursor);
    if (!out.after)
      r.fail("malformed cursor");
  }
  return r.finish(std::move(out));
}

result<mute_req> parse_mute(const json& f) {
  field_reader r{f};
  mute_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  r.boolean("on", out.on);
  return r.finish(std::move(out));
}

result<amend_req> parse_recall(const json& f) {
  field_reader r{f};
  amend_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  r.uint("seq", out.seq);
  if (r.ok() && out.seq == 0)
    r.fail("field 'seq' must be at least 1");
  return r.finish(std::move(out));
}

result<amend_req> parse_edit(const json& f) {
  auto out = parse_recall(f);
  if (!out)
    return out;
  field_reader r{f};
  r.str("body", out->body);
  return r.finish(std::move(*out));
}

result<read_req> parse_read(const json& f) {
  field_reader r{f};
  read_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  r.uint("seq", out.seq);
  return r.finish(std::move(out));
}

result<conv_req> parse_conv_req(const json& f) {
  field_reader r{f};
  conv_req out;
  r.str("conv", out.conv, need::required, valid_conv);
  return r.finish(std::move(out));
}

result<members_req> parse_members(const json& f) {
  field_reader r{f};
  members_req out;
  r.str("conv", out.conv, need::required, [](std::string_view s) {
    auto c = parse_conv(s);
    return c && c->kind == conv_kind::group;
  }, "conv (must be a g: id)");
  r.users("members", out.members, max_members);
  return r.finish(std::move(out));
}

result<presence_sub_req> parse_presence_sub(const json& f) {
  field_reader r{f};
  presence_sub_req out;
  r.users("users", out.users, max_presence);
  return r.finish(std::move(out));
}

// ---- server frames ----------------------------------------------------------------

json auth_ok_frame(req_id req, std::string_view user, std::string_view device,
                   uint64_t iseq, std::string_view node) {
  return with_req({{"t", "auth_ok"}, {"user", user}, {"device", device},
                   {"iseq", iseq}, {"node", node}},
                  req);
}

json ack_batch_frame(req_id req, std::string_view conv, uint64_t first_seq,
                     uint64_t last_seq, const std::vector<uint64_t>& mids, bool dup) {
  auto mid_strings = json::array();
  for (auto mid : mids)
    mid_strings.push_back(std::to_string(mid));
  json f{{"t", "ack_batch"}, {"conv", conv}, {"first_seq", first_seq},
         {"last_seq", last_seq}, {"mids", std::move(mid_strings)}};
  if (dup)
    f["dup"] = true;
  return with_req(std::move(f), req);
}

json msg_frame(const message& m, std::optional<uint64_t> iseq) {
  json f{{"t", "msg"}, {"conv", m.conv}, {"seq", m.seq}, {"mid", std::to_string(m.mid)},
         {"from", m.from}, {"device", m.device}, {"type", m.type}, {"body", m.body},
         {"ex", ex_object(m.ex)}, {"ts", m.ts}};
  if (iseq)
    f["iseq"] = *iseq;
  if (m.prio != 0)
    f["prio"] = m.prio;
  if (!m.mentions.empty())
    f["mentions"] = m.mentions;
  if (m.recalled_by != 0)
    f["recalled"] = true;
  if (m.edited != 0)
    f["edited"] = m.edited;
  return f;
}

json sync_result_frame(req_id req, const std::vector<std::pair<uint64_t, message>>& msgs,
                       bool more) {
  auto list = json::array();
  for (const auto& [iseq, m] : msgs)
    list.push_back(msg_frame(m, iseq));
  return with_req({{"t", "sync_result"}, {"msgs", std::move(list)}, {"more", more}}, req);
}

json history_result_frame(req_id req, std::string_view conv,
                          const std::vector<message>& msgs, bool more) {
  auto list = json::array();
  for (const auto& m : msgs)
    list.push_back(msg_frame(m, std::nullopt));
  return with_req({{"t", "history_result"}, {"conv", conv}, {"msgs", std::move(list)},
                   {"more", more}},
                  req);
}

json unread_result_frame(req_id req, const std::vector<unread_entry>& convs) {
  auto list = json::array();
  uint64_t total = 0;
  for (const auto& c : convs) {
    auto unread = c.last_seq > c.read_seq ? c.last_seq - c.read_seq : 0;
    if (unread == 0)
      continue;
    total += unread;
    list.push_back({{"conv", c.conv}, {"unread", unread}, {"last_seq", c.last_seq},
                    {"read_seq", c.read_seq}});
  }
  return with_req({{"t", "unread_result"}, {"total", total}, {"convs", std::move(list)}}, req);
}

json convs_result_frame(req_id req, const std::vector<conv_summary>& rows, bool more) {
  static constexpr const char* kinds[] = {"dm", "group", "room"};
  auto list = json::array();
  for (const auto& r : rows) {
    auto id = parse_conv(r.at.conv);
    json row{{"conv", r.at.conv},
             {"kind", kinds[static_cast<size_t>(id ? id->kind : conv_kind::dm)]},
             {"last_seq", r.last_seq},
             {"read_seq", r.read_seq},
             {"unread", r.last_seq > r.read_seq ? r.last_seq - r.read_seq : 0},
             {"mentions", r.mentions},
             {"muted", r.muted}};
    if (r.last.seq > 0)
      row["last"] = {{"seq", r.last.seq}, {"mid", std::to_string(r.last.mid)},
                     {"from", r.last.from}, {"type", r.last.type}, {"body", r.last.body},
                     {"ts", r.last.ts}};
    list.push_back(std::move(row));
  }
  json f{{"t", "convs_result"}, {"convs", std::move(list)}, {"more", more}};
  if (more && !rows.empty())
    f["next"] = encode_cursor(rows.back().at);
  return with_req(std::move(f), req);
}

json mute_frame(std::string_view conv, bool on) {
  return {{"t", "mute"}, {"conv", conv}, {"on", on}};
}

json read_frame(std::string_view conv, uint64_t seq) {
  return {{"t", "read"}, {"conv", conv}, {"seq", seq}};
}

json receipt_frame(std::string_view conv, std::string_view user, uint64_t seq) {
  return {{"t", "receipt"}, {"conv", conv}, {"user", user}, {"seq", seq}};
}

json typing_frame(std::string_view conv, std::string_view user) {
  return {{"t", "typing"}, {"conv", conv}, {"user", user}};
}

json presence_frame(std::string_view user, bool online) {
  return {{"t", "presence"}, {"user", user}, {"online", online}};
}

json group_info_result_frame(req_id req, std::string_view conv,
                             const std::vector<std::string>& members, std::string_view owner,
                             std::string_view mode, uint64_t last_seq) {
  return with_req({{"t", "group_info_result"}, {"conv", conv}, {"members", members},
                   {"owner", owner}, {"mode", mode}, {"last_seq", last_seq}},
                  req);
}

json notify_frame(std::string_view conv, uint64_t seq) {
  return {{"t", "notify"}, {"conv", conv}, {"seq", seq}};
}

json mention_frame(std::string_view conv, uint64_t seq, std::string_view from) {
  return {{"t", "mention"}, {"conv", conv}, {"seq", seq}, {"from", from}};
}

json ok_frame(req_id req) {
  return with_req({{"t", "ok"}}, req);
}

json ok_frame(req_id req, uint64_t seq) {
  return with_req({{"t", "ok"}, {"seq", seq}}, req);
}

json pong_frame(req_id req) {
  return with_req({{"t", "pong"}}, req);
}

json error_frame(req_id req, errc code, std::string_view msg) {
  return with_req({{"t", "error"}, {"code", to_string(code)}, {"msg", msg}}, req);
}

} // namespace imengine
