#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/message.hpp"

// The conversation list a client shows after login (`convs`): its order,
// its rows and the cursor that continues it.
namespace imengine {

// Where a conversation sits in the list: most recent activity (the ts of
// its last message) first; equal ts by conv, descending.
struct list_position {
  int64_t ts = 0;
  std::string conv;
};

// Whether `a` comes before `b` in the list.
inline bool list_before(const list_position& a, const list_position& b) {
  return a.ts != b.ts ? a.ts > b.ts : a.conv > b.conv;
}

// The cursor a client gets as `next`: opaque to it (base64url of the
// position), checked when it comes back.
std::string encode_cursor(const list_position& p);
std::optional<list_position> decode_cursor(std::string_view cursor);

// One row of `convs_result`.
struct conv_summary {
  list_position at;
  uint64_t last_seq = 0;
  uint64_t read_seq = 0;
  uint32_t mentions = 0;    // unread messages that mention the user
  bool muted = false;
  message last;             // seq 0: none
};

// A page of the list: rows in list order, and whether more follow.
struct conv_page {
  std::vector<conv_summary> rows;
  bool more = false;
};

// The first `limit` rows of every node's page of `limit` rows after the
// same cursor: the page of the whole list (a row a node left out comes
// after `limit` rows of that node).
conv_page merge_pages(std::vector<conv_page> pages, uint32_t limit);

} // namespace imengine
