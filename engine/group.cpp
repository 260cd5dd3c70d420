#include "engine/group.hpp"

namespace imengine {

std::string_view to_string(member_role r) noexcept {
  return r == member_role::owner ? "owner" : "member";
}

std::string_view to_string(group_op op) noexcept {
  switch (op) {
    case group_op::create: return "create";
    case group_op::add: return "add";
    case group_op::remove: return "remove";
    case group_op::join: return "join";
    case group_op::leave: return "leave";
  }
  return "?";
}

std::string_view to_string(diffusion d) noexcept {
  return d == diffusion::timeline ? "timeline" : "inbox";
}

std::optional<member_role> parse_role(std::string_view s) noexcept {
  if (s == "owner")
    return member_role::owner;
  if (s == "member")
    return member_role::member;
  return std::nullopt;
}

} // namespace imengine
