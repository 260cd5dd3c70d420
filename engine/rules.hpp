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

} // namespace imengine
