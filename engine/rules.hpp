#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/ids.hpp"

// Rules that follow from identifiers alone. Membership of g:/r:
// conversations is state, decided by their conversation actor.
namespace imengine {

// A dm's members are the two users named in its id.
inline bool dm_member(const conv_id& c, std::string_view user) {
  return c.kind == conv_kind::dm && (c.a == user || c.b == user);
}

inline std::vector<std::string> dm_members(const conv_id& c) {
  return {c.a, c.b};
}

// The sender of the server API's `from:"system"` messages. No client may
// authenticate as it; it needs no membership to send.
inline constexpr std::string_view system_user = "system";

// "@all" is a valid user id by its characters, but mentions mean everyone
// by it: nobody may be that user.
inline bool reserved_user(std::string_view user) {
  return user == system_user || user == "@all";
}

} // namespace imengine
