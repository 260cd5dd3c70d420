#include "storage/conv_index.hpp"

#include "engine/mentions.hpp"

namespace imengine::storage {

namespace {

std::string activity_key(std::string_view user, int64_t ts, std::string_view conv) {
  auto k = seq_key(user, static_cast<uint64_t>(ts));
  k.append(conv);
  return k;
}

} // namespace

void conv_index::open(txn& t) {
  activity_ = open_db(t, "activity");
  timelines_ = open_db(t, "timelines");
  mentions_ = open_db(t, "mentions");
  mentions_all_ = open_db(t, "mentions_all");
}

void conv_index::on_commit(txn& t, std::string_view conv, int64_t prev_ts, int64_t ts,
                           const list_update& u) const {
  // Each member has one entry: the key at prev_ts (inbox) or its timelines
  // key; it is moved, dropped or added, never duplicated.
  auto drop = [&](const std::string& user) {
    if (u.was == diffusion::timeline)
      t.del(timelines_, pair_key(user, conv));
    else if (prev_ts > 0)
      t.del(activity_, activity_key(user, prev_ts, conv));
  };
  for (const auto& user : u.removed)
    drop(user);
  auto switched = u.was != u.now;
  for (const auto& user : u.members) {
    if (u.now == diffusion::inbox) {
      drop(user);
      t.put(activity_, activity_key(user, ts, conv), "");
    } else {
      if (switched)
        drop(user);
      t.put(timelines_, pair_key(user, conv), "");
    }
  }
}

std::vector<list_position> conv_index::activity(const txn& t, std::string_view user,
                                           const std::optional<list_position>& after,
                                           uint32_t limit, bool& more) const {
  std::vector<list_position> out;
  more = false;
  auto prefix = key_prefix(user);
  cursor c(t, activity_);
  // Keys ascend by (ts, conv): walk backwards from just before `after`, or
  // from the user's last key.
  bool ok;
  if (after) {
    ok = c.seek(activity_key(user, after->ts, after->conv)) ? c.prev() : c.last();
  } else {
    auto end = key_prefix(user);
    end.back() = '\1';   // the first key past every `user \0 ...`
    ok = c.seek(end) ? c.prev() : c.last();
  }
  for (; ok && c.key().substr(0, prefix.size()) == prefix; ok = c.prev()) {
    auto rest = c.key().substr(prefix.size());
    if (rest.size() < 8)
      continue;
    if (out.size() == limit) {
      more = true;
      break;
    }
    out.push_back(list_position{static_cast<int64_t>(get_be64(rest)), std::string(rest.substr(8))});
  }
  return out;
}

std::vector<std::string> conv_index::timelines(const txn& t, std::string_view user) const {
  std::vector<std::string> out;
  auto prefix = key_prefix(user);
  cursor c(t, timelines_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next())
    out.emplace_back(c.key().substr(prefix.size()));
  return out;
}

// Every key of `m` in the mention databases, with the one to write it to.
template <class F>
void for_each_mention_key(const message& m, MDB_dbi named, MDB_dbi all, F f) {
  for (const auto& u : m.mentions) {
    if (u == mention_all)
      f(all, seq_key(m.conv, m.seq));
    else
      f(named, seq_key(pair_key(u, m.conv), m.seq));
  }
}

void conv_index::add_mentions(txn& t, const message& m) const {
  for_each_mention_key(m, mentions_, mentions_all_,
                       [&](MDB_dbi db, const std::string& k) { t.put(db, k, ""); });
}

void conv_index::drop_mentions(txn& t, const message& m) const {
  for_each_mention_key(m, mentions_, mentions_all_,
                       [&](MDB_dbi db, const std::string& k) { t.del(db, k); });
}

namespace {

uint32_t count_after(const txn& t, MDB_dbi db, const std::string& name, uint64_t after) {
  uint32_t n = 0;
  auto prefix = key_prefix(name);
  cursor c(t, db);
  for (bool ok = after < UINT64_MAX && c.seek(seq_key(name, after + 1));
       ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next())
    ++n;
  return n;
}

} // namespace

uint32_t conv_index::mentions_after(const txn& t, std::string_view user, std::string_view conv,
                                    uint64_t after) const {
  // The user's own @all messages are at or below its read position (a
  // sender has read what it sent), so they are not counted.
  return count_after(t, mentions_, pair_key(user, conv), after)
         + count_after(t, mentions_all_, std::string(conv), after);
}

} // namespace imengine::storage
