#include "engine/mentions.hpp"

#include <algorithm>

namespace imengine {

result<std::vector<std::string>> resolve_mentions(
  const std::vector<std::string>& asked, std::string_view sender, bool may_all,
  const std::function<bool(const std::string&)>& is_member) {
  std::vector<std::string> out;
  if (std::find(asked.begin(), asked.end(), mention_all) != asked.end()) {
    if (!may_all)
      return failure{errc::forbidden, "only a group's owner mentions @all"};
    out.emplace_back(mention_all);
    return out;
  }
  for (const auto& u : asked)
    if (u != sender && is_member(u) && std::find(out.begin(), out.end(), u) == out.end())
      out.push_back(u);
  return out;
}

bool mentions_user(const message& m, std::string_view user) {
  return std::any_of(m.mentions.begin(), m.mentions.end(), [&](const std::string& u) {
    return u == user || (u == mention_all && m.from != user);
  });
}

} // namespace imengine
