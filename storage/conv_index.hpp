#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/conv_list.hpp"
#include "engine/group.hpp"
#include "engine/message.hpp"
#include "storage/lmdb.hpp"

// The per-user index behind the conversation list, kept in the commits
// that already happen, so that a page never scans messages:
//   activity   user \0 be64(ts) conv -> ""   a conversation in inbox mode,
//              at the ts of its last message (its activity)
//   timelines  user \0 conv -> ""            a member of a timeline-mode one
//   mentions   user \0 conv \0 be64(seq) -> ""   a message that names the user
//   mentions_all  conv \0 be64(seq) -> ""         a message that mentions @all
// The mentions count of a row is the keys past the user's read position: a
// few cursor steps, and an @all costs one key whatever the member count.
// An inbox-mode conversation rewrites one key per member per commit (at
// most --large-group members). A timeline-mode one (a room, a large group)
// rewrites none: its members are listed once, and a page reads its last
// activity from the conversation itself, so a room message costs nothing
// here whatever its member count.
namespace imengine::storage {

// What a commit changes in the index, built by the conversation.
struct list_update {
  diffusion was = diffusion::inbox;   // the mode before the commit
  diffusion now = diffusion::inbox;   // and after it
  // Inbox mode after the commit: every member. Timeline mode after it: the
  // members to list (all of them on a switch to timeline, else those added).
  std::vector<std::string> members;
  std::vector<std::string> removed;   // members the commit removed
};

class conv_index {
public:
  void open(txn& t);   // creates its databases

  // A commit of `conv` moved its activity from `prev_ts` (0: first commit)
  // to `ts`.
  void on_commit(txn& t, std::string_view conv, int64_t prev_ts, int64_t ts,
                 const list_update& u) const;

  // Up to `limit` inbox-mode keys of `user` after `after` (from the top
  // without it), in list order; `more` if another follows.
  std::vector<list_position> activity(const txn& t, std::string_view user,
                                 const std::optional<list_position>& after, uint32_t limit,
                                 bool& more) const;
  // Every timeline-mode conversation the user is listed in.
  std::vector<std::string> timelines(const txn& t, std::string_view user) const;

  // Indexes the mentions of a committed message, or drops them (a recall).
  void add_mentions(txn& t, const message& m) const;
  void drop_mentions(txn& t, const message& m) const;
  // Messages of `conv` after seq `after` that mention `user`.
  uint32_t mentions_after(const txn& t, std::string_view user, std::string_view conv,
                          uint64_t after) const;

private:
  MDB_dbi activity_ = 0, timelines_ = 0, mentions_ = 0, mentions_all_ = 0;
};

} // namespace imengine::storage
