#include "actors/reader.hpp"

#include "actors/directory.hpp"
#include "actors/node_context.hpp"
#include "actors/route.hpp"
#include "engine/rules.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

using self_ptr = reader_actor::stateful_pointer<reader_state>;

// Whether `user` may read `c`: dm by its id, groups and rooms by their
// committed membership (what a reply already told the client).
caf::error check_access(const node_context* ctx, const storage::txn& t, const conv_id& c,
                        const std::string& user) {
  // The server API reads as system_user, which no client can be: any
  // conversation that exists (a group must; dms and rooms read empty).
  if (user == system_user) {
    if (c.kind == conv_kind::group && !ctx->store->conv(t, c.name))
      return make_error(errc::not_found, "no such group " + c.name);
    return {};
  }
  switch (c.kind) {
    case conv_kind::dm:
      if (!dm_member(c, user))
        return make_error(errc::forbidden, "not a member of " + c.name);
      return {};
    case conv_kind::group:
      if (!ctx->store->conv(t, c.name))
        return make_error(errc::not_found, "no such group " + c.name);
      if (!ctx->store->role(t, c.name, user))
        return make_error(errc::forbidden, "not a member of " + c.name);
      return {};
    case conv_kind::room:
      if (!ctx->store->role(t, c.name, user))
        return make_error(errc::forbidden, "join " + c.name + " first");
      return {};
  }
  return make_error(errc::internal, "unknown conversation kind");
}

// The conversation, if `user` may read it; the error otherwise.
caf::expected<conv_id> accessible(self_ptr self, const storage::txn& t, const std::string& conv,
                                  const std::string& user) {
  auto c = parse_conv(conv);
  if (!c)
    return make_error(errc::bad_frame, "malformed conv");
  if (auto err = check_access(self->state.ctx, t, *c, user))
    return err;
  return std::move(*c);
}

caf::result<message_page> history(self_ptr self, const std::string& user,
                                  const history_query& q) {
  auto* ctx = self->state.ctx;
  auto t = ctx->store->read();
  if (auto c = accessible(self, t, q.conv, user); !c)
    return c.error();
  auto page = q.descending ? ctx->store->messages_before(t, q.conv, q.before, q.limit)
                           : ctx->store->messages_after(t, q.conv, q.after, q.limit);
  return message_page{std::move(page.items), page.more};
}

caf::result<group_info> info(self_ptr self, const std::string& user, const std::string& conv) {
  auto* ctx = self->state.ctx;
  auto t = ctx->store->read();
  auto c = accessible(self, t, conv, user);
  if (!c)
    return c.error();
  if (c->kind != conv_kind::group)
    return make_error(errc::bad_frame, "group_info needs a g: conversation");
  group_info out;
  for (auto& [member, role] : ctx->store->members(t, conv)) {
    if (role == member_role::owner)
      out.owner = member;
    out.members.push_back(std::move(member));
  }
  out.last_seq = ctx->store->conv(t, conv).value_or(storage::conv_meta{}).last_seq;
  out.mode = diffusion_for(c->kind, out.members.size(), ctx->cfg.large_group);
  return out;
}

// The read position of (user, conv): the pending one if it is ahead.
uint64_t read_position(self_ptr self, const storage::txn& t, const std::string& key,
                       const std::string& user, const std::string& conv) {
  auto stored = self->state.ctx->store->user_conv_of(t, user, conv).read_seq;
  auto i = self->state.pending_reads.find(key);
  return i == self->state.pending_reads.end() ? stored : std::max(stored, i->second);
}

// Tells the user's inbox (on whichever node) something for its devices.
template <class... Ts>
void to_devices(self_ptr self, const std::string& user, Ts... xs) {
  with_user(
    self, self->state.ctx, &self->state.inboxes, user,
    [=](const user_actor& inbox) { tell(self, self->state.ctx, inbox, xs...); },
    [](const caf::error&) {});   // the user's node is down: its devices are too
}

// Moves the read position forward (never back, never past the last seq)
// and tells the user's other devices (and, in a dm, the peer).
caf::result<ok_atom> mark_read(self_ptr self, const std::string& user, const std::string& conv,
                               uint64_t seq, const std::string& device) {
  auto& st = self->state;
  auto key = storage::pair_key(user, conv);
  {
    auto t = st.ctx->store->read();
    if (auto c = accessible(self, t, conv, user); !c)
      return c.error();
    auto last = st.ctx->store->conv(t, conv).value_or(storage::conv_meta{}).last_seq;
    seq = std::min(seq, last);
    if (seq <= read_position(self, t, key, user, conv))
      return ok_atom::value;
  }
  st.pending_reads[key] = seq;
  write_job job{[user, conv, seq](storage::store& s, storage::txn& t) {
    s.set_read(t, user, conv, seq);
    return errc::none;
  }};
  self->request(st.ctx->writer, caf::infinite, std::move(job))
    .then(
      [=](ok_atom) {
        auto& pending = self->state.pending_reads;
        if (auto i = pending.find(key); i != pending.end() && i->second == seq)
          pending.erase(i);
      },
      [](caf::error&) {});   // kept pending: unread still counts it
  to_devices(self, user, read_atom::value, conv, seq, device);
  return ok_atom::value;
}

// Mutes or unmutes for the user, once committed, and tells its other
// devices.
caf::result<ok_atom> mute(self_ptr self, const std::string& user, const std::string& conv,
                          bool on, const std::string& device) {
  auto& st = self->state;
  {
    auto t = st.ctx->store->read();
    if (auto c = accessible(self, t, conv, user); !c)
      return c.error();
  }
  write_job job{[user, conv, on](storage::store& s, storage::txn& t) {
    s.set_muted(t, user, conv, on);
    return errc::none;
  }};
  auto rp = self->make_response_promise<ok_atom>();
  self->request(st.ctx->writer, caf::infinite, std::move(job))
    .then(
      [=](ok_atom) mutable {
        to_devices(self, user, mute_atom::value, conv, on, device);
        rp.deliver(ok_atom::value);
      },
      [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

// A page of the conversations this node holds for the user.
conv_page convs(self_ptr self, const std::string& user, const convs_query& q) {
  auto& st = self->state;
  auto t = st.ctx->store->read();
  auto after = q.from_top ? std::nullopt : std::optional<list_position>(q.after);
  auto page = st.ctx->store->conv_list(t, user, after, q.limit);
  conv_page out;
  out.more = page.more;
  for (auto& row : page.items) {
    conv_summary s;
    auto key = storage::pair_key(user, row.key.conv);
    s.last_seq = row.meta.last_seq;
    s.read_seq = std::min(s.last_seq, read_position(self, t, key, user, row.key.conv));
    s.mentions = st.ctx->store->mentions_after(t, user, row.key.conv, s.read_seq);
    s.muted = row.positions.muted;
    if (row.last)
      s.last = std::move(*row.last);
    s.at = std::move(row.key);
    out.rows.push_back(std::move(s));
  }
  return out;
}

// unread = last_seq - read_seq for every conversation of this node the
// user has a position in.
std::vector<unread_entry> unread(self_ptr self, const std::string& user) {
  auto& st = self->state;
  std::vector<unread_entry> out;
  auto t = st.ctx->store->read();
  for (auto& [conv, uc] : st.ctx->store->user_convs(t, user)) {
    auto meta = st.ctx->store->conv(t, conv);
    if (!meta)
      continue;
    auto i = st.pending_reads.find(storage::pair_key(user, conv));
    auto read = std::max(uc.read_seq, i == st.pending_reads.end() ? 0 : i->second);
    auto last = uc.left_seq > 0 ? std::min(meta->last_seq, uc.left_seq) : meta->last_seq;
    if (last > read)
      out.push_back(unread_entry{conv, last, read});
  }
  return out;
}

} // namespace

reader_actor::behavior_type reader_fun(self_ptr self, const node_context* ctx) {
  self->state.ctx = ctx;
  log_stray_errors(self);
  return {
    [=](history_atom, const std::string& user, const history_query& q) {
      count_received(self, ctx);
      return history(self, user, q);
    },
    [=](info_atom, const std::string& user, const std::string& conv) {
      return info(self, user, conv);
    },
    [=](read_atom, const std::string& user, const std::string& conv, uint64_t seq,
        const std::string& device) { return mark_read(self, user, conv, seq, device); },
    [=](position_atom, const std::string& user, const std::string& conv) {
      count_received(self, ctx);
      auto t = ctx->store->read();
      return ctx->store->user_conv_of(t, user, conv).delivered_seq;
    },
    [=](unread_atom, const std::string& user) {
      count_received(self, ctx);
      return unread(self, user);
    },
    [=](convs_atom, const std::string& user, const convs_query& q) {
      count_received(self, ctx);
      return convs(self, user, q);
    },
    [=](mute_atom, const std::string& user, const std::string& conv, bool on,
        const std::string& device) { return mute(self, user, conv, on, device); },
    [=](sharing_atom, const std::string& user, const std::vector<std::string>& others) {
      count_received(self, ctx);
      auto t = self->state.ctx->store->read();
      return self->state.ctx->store->sharing_with(t, user, others);
    },
  };
}

} // namespace imengine
