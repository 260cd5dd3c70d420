#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/ids.hpp"

// The vocabulary of membership and diffusion: what a member may be, what
// a membership change does, how a conversation reaches its members. Enums
// inside the engine; strings only on the wire and on disk.
namespace imengine {

enum class member_role : uint8_t { member, owner };

// Membership changes: group_create/add/remove on g:, join/leave on r:.
enum class group_op : uint8_t { create, add, remove, join, leave };

// inbox: a copy per member inbox (write diffusion); timeline: one shared
// timeline pushed to online members (read diffusion).
enum class diffusion : uint8_t { inbox, timeline };

std::string_view to_string(member_role r) noexcept;   // "member" | "owner"
std::string_view to_string(group_op op) noexcept;     // "create" | "add" | ...
std::string_view to_string(diffusion d) noexcept;     // "inbox" | "timeline"

std::optional<member_role> parse_role(std::string_view s) noexcept;

// Rooms always use the timeline; groups above `large_group` members too.
inline diffusion diffusion_for(conv_kind kind, size_t members, uint32_t large_group) noexcept {
  return kind == conv_kind::room || (kind == conv_kind::group && members > large_group)
           ? diffusion::timeline
           : diffusion::inbox;
}

} // namespace imengine
