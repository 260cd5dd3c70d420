#pragma once

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/error.hpp"
#include "engine/group.hpp"
#include "engine/message.hpp"
#include "storage/conv_index.hpp"
#include "storage/lmdb.hpp"
#include "storage/record.hpp"

// The store adapter: the node's one LMDB environment and every typed read
// and write the actors need. Reads work in any transaction; writes run only
// inside the storage writer's transaction and check before they write, so a
// failed check leaves the transaction as it was.
//
// Named databases (keys: `a \0 b`, `a \0 be64(n)`):
//   msgs        conv \0 seq        -> message
//   convs       conv               -> conv_meta
//   user_convs  user \0 conv       -> user_conv (read/delivered positions)
//   inbox       user \0 iseq       -> message copy (write diffusion)
//   inbox_refs  user \0 conv \0 seq -> be64(iseq) of that copy (a recall or
//                                     edit amends the copy in place)
//   users       user               -> user_meta (inbox head, device acks)
//   dedupe      user \0 cmid       -> dedupe_entry (the original ack)
//   fanout      conv               -> "" while some inbox copies are missing
//   members     conv \0 user       -> role ("owner" | "member") of g: groups
//   activity, timelines             the conversation list (conv_index.hpp)
namespace imengine::storage {

struct store_options {
  std::string path;
  bool sync = true;            // fsync at every commit
  uint64_t map_size_mb = 65536;
};

template <class T>
struct page {
  std::vector<T> items;
  bool more = false;
};

using inbox_entry = std::pair<uint64_t, message>;   // (iseq, message)

// One row of a user's conversation list, as this store holds it.
struct conv_row {
  list_position key;         // ts of the last message, conv
  conv_meta meta;
  user_conv positions;
  std::optional<message> last;
};

class store {
public:
  // Throws lmdb_error, or std::runtime_error naming the path when the
  // directory cannot be used or another engine holds it.
  explicit store(const store_options& opts);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  txn read() const { return txn(env_, true, &keys_read_, &gate_); }
  txn write() { return txn(env_, false, &keys_read_, &gate_); }

  // The map is address space, reserved up front; the file grows only as
  // pages are written. When a write meets MDB_MAP_FULL the writer aborts,
  // calls grow_map (which waits for open transactions to end) and retries.
  struct usage {
    uint64_t map_bytes = 0;    // current map size
    uint64_t used_bytes = 0;   // pages in use (last page number x page size)
  };
  usage map_usage() const;
  // Doubles the map; returns the new size in bytes. Call with no
  // transaction open on this thread.
  uint64_t grow_map();

  // Keys read by every transaction so far (gets and cursor steps).
  uint64_t keys_read() const { return keys_read_.load(std::memory_order_relaxed); }

  // ---- reads
  std::optional<conv_meta> conv(const txn& t, std::string_view conv) const;
  std::optional<message> message_at(const txn& t, std::string_view conv, uint64_t seq) const;
  // Ascending from seq > after.
  page<message> messages_after(const txn& t, std::string_view conv, uint64_t after, uint32_t limit) const;
  // Descending from seq < before.
  page<message> messages_before(const txn& t, std::string_view conv, uint64_t before, uint32_t limit) const;
  // The original ack of (user, cmid), unless it expired before `now_s`.
  std::optional<dedupe_entry> dedupe(const txn& t, std::string_view user,
                                     std::string_view cmid, int64_t now_s) const;
  user_meta user(const txn& t, std::string_view user) const;
  user_conv user_conv_of(const txn& t, std::string_view user, std::string_view conv) const;
  // Ascending from iseq > after.
  page<inbox_entry> inbox_after(const txn& t, std::string_view user, uint64_t after, uint32_t limit) const;
  std::vector<std::string> pending_fanouts(const txn& t) const;
  // A group member's role, nullopt for non-members.
  std::optional<member_role> role(const txn& t, std::string_view conv, std::string_view user) const;
  // The members of a group with their roles, ordered by user.
  std::vector<std::pair<std::string, member_role>> members(const txn& t,
                                                           std::string_view conv) const;
  // A page of the user's conversations after `after` (from the most recent
  // without it): reads the page's rows and the user's timeline-mode
  // conversations, never messages beyond each row's last one.
  page<conv_row> conv_list(const txn& t, std::string_view user,
                           const std::optional<list_position>& after, uint32_t limit) const;
  // Messages of `conv` after `read_seq` that mention `user` (by name or @all).
  uint32_t mentions_after(const txn& t, std::string_view user, std::string_view conv,
                          uint64_t read_seq) const {
    return index_.mentions_after(t, user, conv, read_seq);
  }
  // Of `others`, those who share a dm or a group with `user` in this
  // store (rooms do not count: their members are strangers to each other).
  // Reads one key range per other user, whatever the number of groups.
  std::vector<std::string> sharing_with(const txn& t, std::string_view user,
                                        const std::vector<std::string>& others) const;
  // Every conversation the user has positions in, with them.
  std::vector<std::pair<std::string, user_conv>> user_convs(const txn& t,
                                                            std::string_view user) const;

  // ---- writes
  // Appends consecutive messages (msgs[i].seq = first + i) to `conv`,
  // creating it if new; a recall or edit among them amends the message it
  // names in the same transaction (a recall erases the stored body). Fails (internal) unless the stored last_seq is
  // first - 1. Records a dedupe entry per message (a live one is kept)
  // and marks the conversation as having a fan-out to finish. Moves the
  // sender's read position to its last message and the conversation list
  // as `list` says; the first commit gives each of `list.members` a
  // position, so that unread counts see the message from its commit on.
  errc commit_messages(txn& t, std::string_view conv, uint8_t kind,
                       const std::vector<message>& msgs, int64_t dedupe_expires_s,
                       const list_update& list = {});
  // Mutes or unmutes `conv` for `user`.
  void set_muted(txn& t, std::string_view user, std::string_view conv, bool on);
  // Appends inbox copies with iseq = first_iseq + i (a recall or edit
  // amends the user's copy of the message it names). Fails (internal) unless
  // the user's stored head is first_iseq - 1. Moves delivered_seq of each
  // message's conversation, and read_seq for the user's own messages.
  errc append_inbox(txn& t, std::string_view user, uint64_t first_iseq,
                    const std::vector<message>& msgs);
  // Records that every seq <= fanout_seq is in every inbox.
  void set_fanout(txn& t, std::string_view conv, uint64_t fanout_seq);
  // Membership changes of a group, written with the system message that
  // announces them. Each added user's positions start at `from_seq` - 1:
  // the group's history before it joined is neither delivered nor unread.
  void change_members(txn& t, std::string_view conv,
                      const std::vector<std::pair<std::string, member_role>>& added,
                      const std::vector<std::string>& removed, uint64_t from_seq);
  // Moves the delivered position forward (never back): inbox copies of
  // `conv` continue after `seq`.
  void set_delivered(txn& t, std::string_view user, std::string_view conv, uint64_t seq);
  // Moves a device's acked position forward (never back).
  void set_acked(txn& t, std::string_view user, std::string_view device, uint64_t iseq);
  // Moves a read position forward (never back).
  void set_read(txn& t, std::string_view user, std::string_view conv, uint64_t seq);
  // Deletes expired dedupe entries, examining at most `limit` entries from
  // `resume` on; leaves `resume` where the next sweep continues (empty after
  // the last key). Returns how many it deleted.
  size_t sweep_dedupe(txn& t, int64_t now_s, std::string& resume, size_t limit);

private:
  // A recall or edit applied to the timeline's message `target`, or to the
  // user's inbox copy of it.
  void amend_stored(txn& t, const message& amend, uint64_t target);
  void amend_copy(txn& t, std::string_view user, const message& amend, uint64_t target);
  // One position of (user, conv), moved forward only.
  void move_forward(txn& t, std::string_view user, std::string_view conv,
                    uint64_t user_conv::*field, uint64_t seq);

  // An exclusive flock on <path>/imengine.lock, held while the store is
  // open: a second engine on the same directory stops at start instead
  // of corrupting the first one's view.
  int lock_fd_ = -1;
  MDB_env* env_ = nullptr;
  conv_index index_;
  MDB_dbi msgs_ = 0, convs_ = 0, user_convs_ = 0, inbox_ = 0, inbox_refs_ = 0, users_ = 0,
          dedupe_ = 0, fanout_ = 0, members_ = 0;
  mutable std::atomic<uint64_t> keys_read_{0};
  mutable std::shared_mutex gate_;   // see txn: exclusive only to grow the map
};

} // namespace imengine::storage
