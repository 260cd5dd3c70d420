#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/message.hpp"
#include "engine/result.hpp"

// Mentions on a send: names the sender asked for, kept if they are
// members; "@all" for whoever may address everyone.
namespace imengine {

inline constexpr std::string_view mention_all = "@all";
inline constexpr size_t max_mentions = 50;   // names in one message's `mentions`

// The stored list: members other than the sender, each once, in the order
// asked; or just "@all". `forbidden` when "@all" is asked by someone who
// may not (`may_all` false).
result<std::vector<std::string>> resolve_mentions(
  const std::vector<std::string>& asked, std::string_view sender, bool may_all,
  const std::function<bool(const std::string&)>& is_member);

// Whether `m` mentions `user` (by name or through "@all").
bool mentions_user(const message& m, std::string_view user);

} // namespace imengine
