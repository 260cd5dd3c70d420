#include "engine/conv_list.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>

#include "engine/base64url.hpp"
#include "engine/ids.hpp"

namespace imengine {

std::string encode_cursor(const list_position& p) {
  return b64url_encode(std::to_string(p.ts) + ":" + p.conv);
}

std::optional<list_position> decode_cursor(std::string_view cursor) {
  auto text = b64url_decode(cursor);
  if (!text)
    return std::nullopt;
  auto colon = text->find(':');
  if (colon == std::string::npos || colon == 0)
    return std::nullopt;
  list_position p;
  auto [end, ec] = std::from_chars(text->data(), text->data() + colon, p.ts);
  if (ec != std::errc{} || end != text->data() + colon || p.ts < 0)
    return std::nullopt;
  p.conv = text->substr(colon + 1);
  if (!parse_conv(p.conv))
    return std::nullopt;
  return p;
}

conv_page merge_pages(std::vector<conv_page> pages, uint32_t limit) {
  conv_page out;
  for (auto& p : pages) {
    out.more = out.more || p.more;
    std::move(p.rows.begin(), p.rows.end(), std::back_inserter(out.rows));
  }
  std::sort(out.rows.begin(), out.rows.end(),
            [](const auto& a, const auto& b) { return list_before(a.at, b.at); });
  if (out.rows.size() > limit) {
    out.more = true;
    out.rows.resize(limit);
  }
  return out;
}

} // namespace imengine
