#include "storage/store.hpp"

#include "engine/amend.hpp"
#include "engine/rules.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace imengine::storage {

namespace {

// Walks keys `name \0 be64(n)` from `start` in one direction, collecting at
// most `limit` decoded values; `more` tells whether another one follows.
template <class T, class Decode>
page<T> scan(const txn& t, MDB_dbi db, std::string_view name, uint64_t start,
             bool ascending, uint32_t limit, Decode decode) {
  page<T> out;
  auto prefix = key_prefix(name);
  cursor c(t, db);
  bool ok;
  if (ascending) {
    ok = start == UINT64_MAX ? false : c.seek(seq_key(name, start + 1));
  } else {
    // Position at the first key >= start, then step back once.
    ok = c.seek(seq_key(name, start)) ? c.prev() : c.last();
  }
  while (ok && c.key().substr(0, prefix.size()) == prefix) {
    if (out.items.size() == limit) {
      out.more = true;
      break;
    }
    if (auto v = decode(get_be64(c.key().substr(prefix.size())), c.value()))
      out.items.push_back(std::move(*v));
    ok = ascending ? c.next() : c.prev();
  }
  return out;
}

} // namespace

namespace {

[[noreturn]] void unusable(const std::string& path, const std::string& why) {
  throw std::runtime_error("data directory " + path + ": " + why);
}

// Held until close: flock locks go with the descriptor, also on SIGKILL.
int lock_directory(const std::string& path) {
  auto file = path + "/imengine.lock";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    unusable(path, std::string("cannot open imengine.lock: ") + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      unusable(path, "in use by another engine (imengine.lock is held)");
    unusable(path, std::string("cannot lock imengine.lock: ") + std::strerror(err));
  }
  return fd;
}

} // namespace

store::store(const store_options& opts) {
  std::error_code ec;
  std::filesystem::create_directories(opts.path, ec);
  if (ec)
    unusable(opts.path, "cannot create it: " + ec.message());
  lock_fd_ = lock_directory(opts.path);
  if (int rc = mdb_env_create(&env_); rc != MDB_SUCCESS) {
    ::close(lock_fd_);
    check(rc, "mdb_env_create");
  }
  try {
    check(mdb_env_set_maxdbs(env_, 16), "mdb_env_set_maxdbs");
    check(mdb_env_set_mapsize(env_, opts.map_size_mb << 20), "mdb_env_set_mapsize");
    // NOTLS: CAF moves actors between threads, so a read txn may end on
    // another thread than it began. NORDAHEAD: our reads are random pages;
    // the kernel's readahead made a cold restart read gigabytes it never used.
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (!opts.sync)
      flags |= MDB_NOSYNC;
    if (int rc = mdb_env_open(env_, opts.path.c_str(), flags, 0644); rc != MDB_SUCCESS)
      unusable(opts.path, std::string("cannot open the store: ") + mdb_strerror(rc));
    txn t(env_, false);
    msgs_ = open_db(t, "msgs");
    convs_ = open_db(t, "convs");
    user_convs_ = open_db(t, "user_convs");
    inbox_ = open_db(t, "inbox");
    inbox_refs_ = open_db(t, "inbox_refs");
    users_ = open_db(t, "users");
    dedupe_ = open_db(t, "dedupe");
    fanout_ = open_db(t, "fanout");
    members_ = open_db(t, "members");
    index_.open(t);
    t.commit();
  } catch (...) {
    mdb_env_close(env_);
    ::close(lock_fd_);
    throw;
  }
}

store::~store() {
  mdb_env_close(env_);
  ::close(lock_fd_);
}

store::usage store::map_usage() const {
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &st);
  return {info.me_mapsize, (info.me_last_pgno + 1) * uint64_t{st.ms_psize}};
}

uint64_t store::grow_map() {
  std::unique_lock<std::shared_mutex> no_txn(gate_);
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  auto size = info.me_mapsize * 2;
  check(mdb_env_set_mapsize(env_, size), "mdb_env_set_mapsize");
  return size;
}

std::optional<conv_meta> store::conv(const txn& t, std::string_view conv) const {
  auto v = t.get(convs_, conv);
  return v ? decode_conv_meta(*v) : std::nullopt;
}

std::optional<message> store::message_at(const txn& t, std::string_view conv,
                                         uint64_t seq) const {
  auto v = t.get(msgs_, seq_key(conv, seq));
  return v ? decode_message(*v) : std::nullopt;
}

page<message> store::messages_after(const txn& t, std::string_view conv,
                                    uint64_t after, uint32_t limit) const {
  return scan<message>(t, msgs_, conv, after, true, limit,
                       [](uint64_t, std::string_view v) { return decode_message(v); });
}

page<message> store::messages_before(const txn& t, std::string_view conv,
                                     uint64_t before, uint32_t limit) const {
  return scan<message>(t, msgs_, conv, before, false, limit,
                       [](uint64_t, std::string_view v) { return decode_message(v); });
}

std::optional<dedupe_entry> store::dedupe(const txn& t, std::string_view user,
                                          std::string_view cmid, int64_t now_s) const {
  auto v = t.get(dedupe_, pair_key(user, cmid));
  if (!v)
    return std::nullopt;
  auto d = decode_dedupe(*v);
  if (!d || d->expires_s < now_s)
    return std::nullopt;
  return d;
}

user_meta store::user(const txn& t, std::string_view user) const {
  auto v = t.get(users_, user);
  if (!v)
    return {};
  return decode_user_meta(*v).value_or(user_meta{});
}

user_conv store::user_conv_of(const txn& t, std::string_view user,
                              std::string_view conv) const {
  auto v = t.get(user_convs_, pair_key(user, conv));
  if (!v)
    return {};
  return decode_user_conv(*v).value_or(user_conv{});
}

page<inbox_entry> store::inbox_after(const txn& t, std::string_view user,
                                     uint64_t after, uint32_t limit) const {
  return scan<inbox_entry>(t, inbox_, user, after, true, limit,
                           [](uint64_t iseq, std::string_view v) -> std::optional<inbox_entry> {
                             auto m = decode_message(v);
                             if (!m)
                               return std::nullopt;
                             return inbox_entry{iseq, std::move(*m)};
                           });
}

std::vector<std::string> store::pending_fanouts(const txn& t) const {
  std::vector<std::string> out;
  cursor c(t, fanout_);
  for (bool ok = c.first(); ok; ok = c.next())
    out.emplace_back(c.key());
  return out;
}

std::optional<member_role> store::role(const txn& t, std::string_view conv,
                                       std::string_view user) const {
  auto v = t.get(members_, pair_key(conv, user));
  return v ? parse_role(*v) : std::nullopt;
}

std::vector<std::pair<std::string, member_role>> store::members(const txn& t,
                                                                std::string_view conv) const {
  std::vector<std::pair<std::string, member_role>> out;
  auto prefix = key_prefix(conv);
  cursor c(t, members_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next())
    if (auto role = parse_role(c.value()))
      out.emplace_back(std::string(c.key().substr(prefix.size())), *role);
  return out;
}

void store::change_members(txn& t, std::string_view conv,
                           const std::vector<std::pair<std::string, member_role>>& added,
                           const std::vector<std::string>& removed, uint64_t from_seq) {
  for (const auto& [user, role] : added) {
    t.put(members_, pair_key(conv, user), to_string(role));   // stored as its name
    auto uc = user_conv_of(t, user, conv);
    uc.delivered_seq = std::max(uc.delivered_seq, from_seq - 1);
    uc.read_seq = std::max(uc.read_seq, from_seq - 1);
    uc.left_seq = 0;
    t.put(user_convs_, pair_key(user, conv), encode(uc));
  }
  // A removed user still gets the message that removes it, already read:
  // nothing after it counts as unread.
  for (const auto& user : removed) {
    t.del(members_, pair_key(conv, user));
    auto uc = user_conv_of(t, user, conv);
    uc.read_seq = std::max(uc.read_seq, from_seq);
    uc.left_seq = from_seq;
    t.put(user_convs_, pair_key(user, conv), encode(uc));
  }
}

std::vector<std::pair<std::string, user_conv>> store::user_convs(const txn& t,
                                                                std::string_view user) const {
  std::vector<std::pair<std::string, user_conv>> out;
  auto prefix = key_prefix(user);
  cursor c(t, user_convs_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next())
    if (auto uc = decode_user_conv(c.value()))
      out.emplace_back(std::string(c.key().substr(prefix.size())), *uc);
  return out;
}

std::vector<std::string> store::sharing_with(const txn& t, std::string_view user,
                                             const std::vector<std::string>& others) const {
  // The user's dms and the groups it is a member of now.
  std::unordered_set<std::string> mine;
  for (auto& [conv, uc] : user_convs(t, user)) {
    auto c = parse_conv(conv);
    if (c && (c->kind == conv_kind::dm || (c->kind == conv_kind::group && role(t, conv, user))))
      mine.insert(std::move(conv));
  }
  std::vector<std::string> out;
  for (const auto& other : others) {
    auto prefix = key_prefix(other);
    cursor c(t, user_convs_);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix;
         ok = c.next()) {
      auto conv = c.key().substr(prefix.size());
      if (!mine.count(std::string(conv)))
        continue;
      if (conv.rfind("dm:", 0) == 0 || role(t, conv, other)) {
        out.push_back(other);
        break;
      }
    }
  }
  return out;
}

errc store::commit_messages(txn& t, std::string_view conv, uint8_t kind,
                            const std::vector<message>& msgs,
                            int64_t dedupe_expires_s,
                            const list_update& list) {
  if (msgs.empty())
    return errc::none;
  auto meta = this->conv(t, conv).value_or(conv_meta{});
  auto first = msgs.front().seq;
  if (meta.last_seq + 1 != first)
    return errc::internal;   // gapless: seq k commits only after k-1
  for (size_t i = 0; i < msgs.size(); ++i)
    if (msgs[i].seq != first + i || msgs[i].conv != conv)
      return errc::internal;
  if (meta.created_ms == 0) {
    meta.kind = kind;
    meta.created_ms = msgs.front().ts;
  }
  for (const auto& m : msgs) {
    t.put(msgs_, seq_key(conv, m.seq), encode(m));
    index_.add_mentions(t, m);
    if (auto target = amend_target(m); target != 0 && target < m.seq)
      amend_stored(t, m, target);
    if (!m.cmid.empty() && !dedupe(t, m.from, m.cmid, m.ts / 1000)) {
      dedupe_entry d{m.conv, m.seq, m.mid, m.ts, dedupe_expires_s};
      t.put(dedupe_, pair_key(m.from, m.cmid), encode(d));
    }
  }
  auto first_commit = meta.last_seq == 0;
  auto prev_ts = meta.last_ts;
  meta.last_seq = msgs.back().seq;
  meta.last_ts = msgs.back().ts;
  t.put(convs_, conv, encode(meta));
  t.put(fanout_, conv, "");
  index_.on_commit(t, conv, prev_ts, meta.last_ts, list);
  if (first_commit)
    for (const auto& member : list.members)
      if (!t.get(user_convs_, pair_key(member, conv)))
        t.put(user_convs_, pair_key(member, conv), encode(user_conv{}));
  // A sender has read what it sent; the server's `system` has no read state.
  if (!reserved_user(msgs.back().from))
    set_read(t, msgs.back().from, conv, msgs.back().seq);
  return errc::none;
}

errc store::append_inbox(txn& t, std::string_view user, uint64_t first_iseq,
                         const std::vector<message>& msgs) {
  auto meta = this->user(t, user);
  if (meta.last_iseq + 1 != first_iseq)
    return errc::internal;
  auto iseq = first_iseq;
  for (const auto& m : msgs) {
    auto ref = seq_key(pair_key(user, m.conv), m.seq);
    if (auto target = amend_target(m); target != 0)
      amend_copy(t, user, m, target);
    std::string at;
    put_be64(at, iseq);
    t.put(inbox_refs_, ref, at);
    t.put(inbox_, seq_key(user, iseq++), encode(m));
    auto uc = user_conv_of(t, user, m.conv);
    uc.delivered_seq = std::max(uc.delivered_seq, m.seq);
    if (m.from == user)
      uc.read_seq = std::max(uc.read_seq, m.seq);
    t.put(user_convs_, pair_key(user, m.conv), encode(uc));
  }
  meta.last_iseq = iseq - 1;
  t.put(users_, user, encode(meta));
  return errc::none;
}

void store::amend_stored(txn& t, const message& amend, uint64_t target) {
  auto key = seq_key(amend.conv, target);
  auto v = t.get(msgs_, key);
  auto original = v ? decode_message(*v) : std::nullopt;
  if (!original)
    return;
  if (amend.type == recall_type) {
    index_.drop_mentions(t, *original);   // a recalled mention no longer counts
    for (auto edit : original->edits)     // the edits held versions of the body
      amend_stored(t, amend, edit);
  }
  apply_amend(*original, amend);
  t.put(msgs_, key, encode(*original));
}

void store::amend_copy(txn& t, std::string_view user, const message& amend, uint64_t target) {
  auto ref = t.get(inbox_refs_, seq_key(pair_key(user, amend.conv), target));
  if (!ref || ref->size() != 8)
    return;   // no copy here: the user joined after it, or it predates the refs
  auto key = seq_key(user, get_be64(*ref));
  auto v = t.get(inbox_, key);
  auto copy = v ? decode_message(*v) : std::nullopt;
  if (!copy || copy->conv != amend.conv || copy->seq != target)
    return;
  if (amend.type == recall_type)
    for (auto edit : copy->edits)
      amend_copy(t, user, amend, edit);
  apply_amend(*copy, amend);
  t.put(inbox_, key, encode(*copy));
}

void store::set_fanout(txn& t, std::string_view conv, uint64_t fanout_seq) {
  auto meta = this->conv(t, conv);
  if (!meta || fanout_seq <= meta->fanout_seq)
    return;
  meta->fanout_seq = std::min(fanout_seq, meta->last_seq);
  t.put(convs_, conv, encode(*meta));
  if (meta->fanout_seq == meta->last_seq)
    t.del(fanout_, conv);
}

void store::set_acked(txn& t, std::string_view user, std::string_view device,
                      uint64_t iseq) {
  auto meta = this->user(t, user);
  auto& cur = meta.acked[std::string(device)];
  if (iseq <= cur)
    return;
  cur = std::min(iseq, meta.last_iseq);
  t.put(users_, user, encode(meta));
}

void store::move_forward(txn& t, std::string_view user, std::string_view conv,
                         uint64_t user_conv::*field, uint64_t seq) {
  auto uc = user_conv_of(t, user, conv);
  if (seq <= uc.*field)
    return;
  uc.*field = seq;
  t.put(user_convs_, pair_key(user, conv), encode(uc));
}

void store::set_delivered(txn& t, std::string_view user, std::string_view conv,
                          uint64_t seq) {
  move_forward(t, user, conv, &user_conv::delivered_seq, seq);
}

void store::set_read(txn& t, std::string_view user, std::string_view conv,
                     uint64_t seq) {
  move_forward(t, user, conv, &user_conv::read_seq, seq);
}

void store::set_muted(txn& t, std::string_view user, std::string_view conv, bool on) {
  auto uc = user_conv_of(t, user, conv);
  if (uc.muted == on)
    return;
  uc.muted = on;
  t.put(user_convs_, pair_key(user, conv), encode(uc));
}

page<conv_row> store::conv_list(const txn& t, std::string_view user,
                                const std::optional<list_position>& after, uint32_t limit) const {
  bool more = false;
  auto keys = index_.activity(t, user, after, limit, more);
  // Timeline-mode conversations are placed by their own last activity.
  for (auto& c : index_.timelines(t, user)) {
    auto meta = this->conv(t, c);
    if (!meta || meta->last_seq == 0)
      continue;
    list_position k{meta->last_ts, std::move(c)};
    if (!after || list_before(*after, k))
      keys.push_back(std::move(k));
  }
  std::sort(keys.begin(), keys.end(), list_before);
  page<conv_row> out;
  out.more = more || keys.size() > limit;
  keys.resize(std::min<size_t>(keys.size(), limit));
  for (auto& k : keys) {
    conv_row row;
    row.meta = this->conv(t, k.conv).value_or(conv_meta{});
    row.positions = user_conv_of(t, user, k.conv);
    row.last = message_at(t, k.conv, row.meta.last_seq);
    row.key = std::move(k);
    out.items.push_back(std::move(row));
  }
  return out;
}

size_t store::sweep_dedupe(txn& t, int64_t now_s, std::string& resume, size_t limit) {
  size_t deleted = 0;
  std::vector<std::string> expired;
  {
    cursor c(t, dedupe_);
    bool ok = resume.empty() ? c.first() : c.seek(resume);
    for (size_t seen = 0; ok && seen < limit; ++seen, ok = c.next()) {
      auto d = decode_dedupe(c.value());
      if (!d || d->expires_s < now_s)
        expired.emplace_back(c.key());
    }
    resume = ok ? std::string(c.key()) : std::string{};
  }
  for (const auto& k : expired)
    deleted += t.del(dedupe_, k) ? 1 : 0;
  return deleted;
}

} // namespace imengine::storage
