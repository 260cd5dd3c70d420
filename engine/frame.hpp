#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/conv_list.hpp"
#include "engine/error.hpp"
#include "engine/message.hpp"
#include "engine/result.hpp"

// The frame codec: bytes <-> objects (JSON text frames, msgpack binary
// frames with the same keys), typed parsing of every client frame, and the
// builders of every server frame. Pure: no CAF, Beast or LMDB.
namespace imengine {

using json = nlohmann::json;

enum class encoding : uint8_t { json, msgpack };

// The frame types of the protocol, each direction, in a fixed order (the
// metrics count frames by type with these as labels); *_frame_slot gives
// a type's index, or the list's size for a type not in it.
const std::vector<std::string_view>& client_frame_types();
const std::vector<std::string_view>& server_frame_types();
size_t client_frame_slot(std::string_view type);
size_t server_frame_slot(std::string_view type);

// Decodes one frame into an object with a string `t`. Errors: bad_frame
// (not JSON/msgpack, not an object, `t` missing or not a string, `req`
// present but not an integer).
result<json> decode_frame(std::string_view data, encoding enc);

// Encodes an object as JSON text or msgpack bytes.
std::string encode_frame(const json& obj, encoding enc);

// The stored `ex` text of a message as an object ({} when empty or not one).
json ex_object(const std::string& text);

// The `req` of a decoded frame, if it carries an integer one.
std::optional<int64_t> request_id(const json& frame);

// ---- client frames, typed. Every parse_* fails with bad_frame and a
// message naming the field when a field is missing, of the wrong type, or
// a malformed identifier.

struct auth_req {
  std::string user, device, token;   // token may be empty
};

struct send_item {
  std::string cmid;
  std::string type = "text";
  std::string body;
  std::string ex;      // JSON text of the `ex` object, empty when absent
  uint8_t prio = 0;    // 0 or 1
  std::vector<std::string> mentions;   // as asked; the conversation resolves them
};

struct send_req {
  std::string conv;    // validated with parse_conv
  send_item item;
};

struct send_batch_req {
  std::string conv;
  std::vector<send_item> items;   // 1..max_batch, cmids distinct
};

struct ack_req { uint64_t iseq = 0; };

struct sync_req {
  uint64_t after = 0;
  uint32_t limit = 100;   // clamped to 1..max_page
};

struct history_req {
  std::string conv;
  std::optional<uint64_t> after;    // exactly one of after/before;
  std::optional<uint64_t> before;   // neither: the newest page
  uint32_t limit = 50;              // clamped to 1..max_page
};

struct read_req {
  std::string conv;
  uint64_t seq = 0;
};

struct conv_req { std::string conv; };   // group_info, join, leave, typing

struct members_req {                     // group_create, group_add, group_remove
  std::string conv;                      // must be a g: id
  std::vector<std::string> members;      // valid user ids, 0..max_members
};

struct presence_sub_req { std::vector<std::string> users; };

struct convs_req {
  std::optional<list_position> after;   // from `cursor`; absent: the most recent
  uint32_t limit = 50;                  // clamped to 1..max_convs_page
};

struct mute_req {
  std::string conv;
  bool on = false;
};

// recall and edit: a new message of the conversation amending `seq`.
struct amend_req {
  std::string conv;
  uint64_t seq = 0;    // 1.. : the message amended
  std::string body;    // edit only: the new body
};

constexpr size_t max_batch = 100;
constexpr uint32_t max_page = 1000;
constexpr size_t max_members = 10000;
constexpr size_t max_presence = 1000;   // users one presence_sub names
constexpr uint32_t max_convs_page = 200;

result<auth_req> parse_auth(const json& f);
result<send_req> parse_send(const json& f);
result<send_batch_req> parse_send_batch(const json& f);
result<ack_req> parse_ack(const json& f);
result<sync_req> parse_sync(const json& f);
result<history_req> parse_history(const json& f);
result<read_req> parse_read(const json& f);
result<conv_req> parse_conv_req(const json& f);
result<members_req> parse_members(const json& f);
result<presence_sub_req> parse_presence_sub(const json& f);
result<convs_req> parse_convs(const json& f);
result<mute_req> parse_mute(const json& f);
result<amend_req> parse_recall(const json& f);
result<amend_req> parse_edit(const json& f);

// ---- server frames. `req` is echoed when present.

using req_id = std::optional<int64_t>;

json auth_ok_frame(req_id req, std::string_view user, std::string_view device,
                   uint64_t iseq, std::string_view node);
// (`ack` is written straight to bytes by encode_ack, engine/frame_writer.hpp.)
json ack_batch_frame(req_id req, std::string_view conv, uint64_t first_seq,
                     uint64_t last_seq, const std::vector<uint64_t>& mids, bool dup);
// A `msg` push or list entry; `iseq` is present for inbox messages only.
json msg_frame(const message& m, std::optional<uint64_t> iseq);
json sync_result_frame(req_id req,
                       const std::vector<std::pair<uint64_t, message>>& msgs,
                       bool more);
json history_result_frame(req_id req, std::string_view conv,
                          const std::vector<message>& msgs, bool more);
// Read state, receipts, typing and presence.
struct unread_entry {
  std::string conv;
  uint64_t last_seq = 0;
  uint64_t read_seq = 0;
};
json unread_result_frame(req_id req, const std::vector<unread_entry>& convs);
// `next` continues after the last row when `more`.
json convs_result_frame(req_id req, const std::vector<conv_summary>& rows, bool more);
json mute_frame(std::string_view conv, bool on);             // to the user's other devices
json read_frame(std::string_view conv, uint64_t seq);        // to the user's other devices
json receipt_frame(std::string_view conv, std::string_view user, uint64_t seq);
json typing_frame(std::string_view conv, std::string_view user);
json presence_frame(std::string_view user, bool online);
json group_info_result_frame(req_id req, std::string_view conv,
                             const std::vector<std::string>& members, std::string_view owner,
                             std::string_view mode, uint64_t last_seq);
json notify_frame(std::string_view conv, uint64_t seq);   // pull with history
// A mentioned member of a read-diffused conversation (no inbox copy).
json mention_frame(std::string_view conv, uint64_t seq, std::string_view from);
json ok_frame(req_id req);
json ok_frame(req_id req, uint64_t seq);   // recall, edit: the new message's seq
json pong_frame(req_id req);
json error_frame(req_id req, errc code, std::string_view msg);

} // namespace imengine
