#include "engine/amend.hpp"

#include <nlohmann/json.hpp>

namespace imengine {

std::string_view to_string(amend_op op) noexcept {
  return op == amend_op::recall ? recall_type : edit_type;
}

bool reserved_type(std::string_view type) noexcept {
  return type == "system" || type == recall_type || type == edit_type;
}

std::string amend_ex(uint64_t target) {
  return "{\"seq\":" + std::to_string(target) + "}";
}

uint64_t amend_target(const message& m) {
  if (m.type != recall_type && m.type != edit_type)
    return 0;
  auto ex = nlohmann::json::parse(m.ex, nullptr, false);
  if (!ex.is_object())
    return 0;
  auto seq = ex.find("seq");
  return seq != ex.end() && seq->is_number_unsigned() ? seq->get<uint64_t>() : 0;
}

errc may_amend(amend_op op, const message& original, std::string_view user, bool group_owner,
               int64_t now_ms, int64_t window_ms, std::string& why) {
  if (reserved_type(original.type)) {
    why = "a " + original.type + " message cannot be amended";
    return errc::forbidden;
  }
  if (op == amend_op::edit && original.recalled_by != 0) {
    why = "the message was recalled";
    return errc::forbidden;
  }
  if (op == amend_op::recall && group_owner)
    return errc::none;   // an owner recalls anything in its group, any time
  if (original.from != user) {
    why = op == amend_op::recall ? "only its sender or the group's owner recalls a message"
                                 : "only its sender edits a message";
    return errc::forbidden;
  }
  if (now_ms - original.ts > window_ms) {
    why = "the " + std::to_string(window_ms / 1000) + " s window to " + std::string{to_string(op)}
          + " it has passed";
    return errc::forbidden;
  }
  return errc::none;
}

void apply_amend(message& original, const message& amend) {
  if (amend.type == recall_type) {
    original.body.clear();
    original.ex.clear();
    original.mentions.clear();
    original.edited = 0;
    original.edits.clear();   // the store erases them first
    if (original.recalled_by == 0)
      original.recalled_by = amend.seq;
  } else if (amend.type == edit_type && original.recalled_by == 0) {
    original.body = amend.body;
    original.edited = amend.ts;
    original.edits.push_back(amend.seq);
  }
}

} // namespace imengine
