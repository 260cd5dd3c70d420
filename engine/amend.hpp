#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/error.hpp"
#include "engine/message.hpp"

// Recall and edit: each is a new message of the conversation (type
// "recall" or "edit", ex {"seq":N}) that amends an earlier one. These rules
// serve the timeline and every inbox copy alike, so both end the same.
namespace imengine {

enum class amend_op : uint8_t { recall, edit };

inline constexpr std::string_view recall_type = "recall";
inline constexpr std::string_view edit_type = "edit";

std::string_view to_string(amend_op op) noexcept;

// Types only the engine writes: membership notices, recalls and edits. A
// client that sends one is refused, so none can be forged.
bool reserved_type(std::string_view type) noexcept;

// The ex of an amending message: {"seq":N}.
std::string amend_ex(uint64_t target);

// The seq an amending message amends (0: `m` amends nothing).
uint64_t amend_target(const message& m);

// Whether `user` may amend `original` now: the sender within the window
// (ms after the original's ts), or for a recall the owner of the group at
// any time. `none`, or `forbidden` with `why` set.
errc may_amend(amend_op op, const message& original, std::string_view user, bool group_owner,
               int64_t now_ms, int64_t window_ms, std::string& why);

// Applies an amending message to the message it amends: a recall erases
// body, ex and mentions (and forgets the edits, which the store erases
// with the same recall); an edit replaces the body, unless recalled.
void apply_amend(message& original, const message& amend);

} // namespace imengine
