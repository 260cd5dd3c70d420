#include "actors/conversation.hpp"

#include <algorithm>
#include <chrono>
#include <tuple>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "actors/directory.hpp"
#include "actors/fanout.hpp"
#include "actors/node_context.hpp"
#include "actors/route.hpp"
#include "engine/amend.hpp"
#include "engine/mentions.hpp"
#include "engine/rules.hpp"
#include "storage/store.hpp"

namespace imengine {

conversation_state::~conversation_state() {
  auto gone = make_error(errc::unavailable, "the conversation restarted: resend");
  for (auto& kv : replies)
    kv.second.deliver(gone);
  for (auto& kv : inflight)
    for (auto& w : *kv.second)   // one batch's waiters, under each of its cmids
      if (w.rp.pending())
        w.rp.deliver(gone);
}

namespace {

using self_ptr = conversation_actor::stateful_pointer<conversation_state>;

constexpr auto first_retry = std::chrono::milliseconds(1000);
constexpr auto max_retry = std::chrono::milliseconds(16000);

diffusion mode(const conversation_state& st);
void load_state(self_ptr self);

std::string inflight_key(const std::string& user, const std::string& cmid) {
  return storage::pair_key(user, cmid);
}

bool is_member(const conversation_state& st, const std::string& user) {
  return std::find(st.members.begin(), st.members.end(), user) != st.members.end();
}

// Persists the watermark; one write at a time, the latest value wins.
void persist_fanout(self_ptr self) {
  auto& st = self->state;
  if (st.fanout_write_pending || st.fanout_done <= st.fanout_persisted)
    return;
  st.fanout_write_pending = true;
  auto target = st.fanout_done;
  write_job job{[conv = st.id.name, target](storage::store& s, storage::txn& t) {
    s.set_fanout(t, conv, target);
    return errc::none;
  }};
  self->request(st.ctx->writer, caf::infinite, std::move(job))
    .then(
      [=](ok_atom) {
        self->state.fanout_write_pending = false;
        self->state.fanout_persisted = std::max(self->state.fanout_persisted, target);
        persist_fanout(self);
      },
      [=](caf::error&) { self->state.fanout_write_pending = false; });
}

void fanout_failed(self_ptr self, uint64_t round) {
  auto& st = self->state;
  if (round != st.round || st.fanout_retry_scheduled)
    return;
  st.fanout_retry_scheduled = true;
  // Backs off while a member's node stays down: each retry resends from
  // the watermark.
  self->delayed_send(self, st.retry_delay, refanout_atom::value);
  st.retry_delay = std::min(st.retry_delay * 2, max_retry);
}

void fanout_confirmed(self_ptr self, uint64_t round, uint64_t seq) {
  auto& st = self->state;
  if (round != st.round)
    return;
  auto i = st.outstanding.find(seq);
  if (i == st.outstanding.end() || (i->second.left > 0 && --i->second.left > 0))
    return;
  st.outstanding.erase(i);
  auto done = st.outstanding.empty() ? st.committed : st.outstanding.begin()->first - 1;
  if (done > st.fanout_done) {
    st.fanout_done = done;
    st.retry_delay = first_retry;
    persist_fanout(self);
  }
}

// The plugins' hooks for this conversation and its members of now.
void load_hooks(self_ptr self) {
  auto& st = self->state;
  if (st.ctx->plugins && st.ctx->plugins->any_conv_hooks())
    st.hooks = st.ctx->plugins->for_conv(st.id, st.members);
}

// The plugins' observers of committed messages, and of copies that found
// no device of their user online.
void notify_after(self_ptr self, const message& m) {
  auto& slots = self->state.hooks.after;
  if (slots.empty())
    return;
  auto ev = event_of(m);
  for (const auto& slot : slots)
    observe(self, slot, plugin::after_persist_atom::value, ev);
}

// A recipient had no device online: the offline hooks hear of it, unless
// the recipient muted the conversation and is not mentioned (the flag is in
// this node's store, with the recipient's positions in the conversation).
void notify_offline(self_ptr self, const std::string& user, const message& m) {
  auto& slots = self->state.hooks.offline;
  if (slots.empty())
    return;
  if (!mentions_user(m, user)) {
    auto t = self->state.ctx->store->read();
    if (self->state.ctx->store->user_conv_of(t, user, m.conv).muted)
      return;
  }
  auto ev = event_of(m);
  for (const auto& slot : slots)
    observe(self, slot, plugin::offline_atom::value, user, ev);
}

// The fan-out's deadline on this node: the oldest copy still unconfirmed
// after fanout_timeout_ms fails its round (a retry from the watermark).
// One timer while copies are outstanding, not a CAF clock entry per copy.
void arm_fanout_deadline(self_ptr self, std::chrono::steady_clock::duration after) {
  auto& st = self->state;
  if (st.fanout_timer_armed)
    return;
  st.fanout_timer_armed = true;
  self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(after),
                     fanout_deadline_atom::value);
}

void on_fanout_deadline(self_ptr self) {
  auto& st = self->state;
  st.fanout_timer_armed = false;
  if (st.outstanding.empty())
    return;
  // Rounds send in seq order, so the lowest seq waits longest.
  auto timeout = std::chrono::milliseconds(st.ctx->cfg.fanout_timeout_ms);
  auto waited = std::chrono::steady_clock::now() - st.outstanding.begin()->second.since;
  if (waited >= timeout)
    fanout_failed(self, st.round);
  else
    arm_fanout_deadline(self, timeout - waited);
}

// Copies one committed message into every member's inbox. Members receive
// a conversation's messages in seq order: requests to one actor are
// delivered in the order they were sent.
void start_fanout(self_ptr self, const message& m, const std::vector<std::string>& audience) {
  auto& st = self->state;
  st.outstanding[m.seq] = {audience.size(), std::chrono::steady_clock::now()};
  if (!audience.empty())
    arm_fanout_deadline(self, std::chrono::milliseconds(st.ctx->cfg.fanout_timeout_ms));
  auto round = st.round;
  auto seq = m.seq;
  if (audience.empty())
    fanout_confirmed(self, round, seq);   // nobody to copy to: done at once
  // The callbacks share one copy; each request carries its own.
  auto held = std::make_shared<const message>(m);
  for (const auto& member : audience) {
    with_user(
      self, st.ctx, &st.inboxes, member,
      [=](const user_actor& inbox) {
        ask_watched(self, self->state.ctx, inbox, deliver_atom::value, *held)
          .then([=](bool offline) {
                  if (offline)
                    notify_offline(self, member, *held);
                  fanout_confirmed(self, round, seq);
                },
                [=](caf::error&) { fanout_failed(self, round); });
      },
      [=](const caf::error&) { fanout_failed(self, round); });
  }
}

// A timeline message has no inbox copies: the members it names by name
// hear of it as a `mention` on their devices (or, with none online, through
// the offline hooks). An @all reaches the online members with the message
// itself and everyone through the mentions count.
void tell_mentioned(self_ptr self, const message& m) {
  auto& st = self->state;
  for (const auto& user : m.mentions) {
    if (user == mention_all)
      continue;
    with_user(
      self, st.ctx, &st.inboxes, user,
      [=](const user_actor& inbox) {
        // An inbox here answers at once: no deadline to keep.
        ask_watched(self, self->state.ctx, inbox, mention_atom::value, m.conv, m.seq, m.from)
          .then([=](bool offline) {
                  if (offline)
                    notify_offline(self, user, m);
                },
                [](caf::error&) {});   // its node is down: the count still has it
      },
      [](const caf::error&) {});
  }
}

// Starts the fan-out again from the watermark: after a restart, or after a
// member's inbox refused or missed a copy. Inboxes skip what they hold.
void refanout(self_ptr self) {
  auto& st = self->state;
  st.round++;
  st.outstanding.clear();
  // Today's members (inboxes skip what they hold); a timeline conversation
  // has no inbox copies to finish, only its watermark to move.
  auto audience = mode(st) == diffusion::timeline ? std::vector<std::string>{} : st.members;
  auto t = st.ctx->store->read();
  auto after = st.fanout_done;
  while (after < st.committed) {
    auto page = st.ctx->store->messages_after(t, st.id.name, after, 1000);
    if (page.items.empty())
      break;
    for (const auto& m : page.items)
      start_fanout(self, m, audience);
    after = page.items.back().seq;
  }
}

send_ack ack_of(const std::vector<message>& msgs, bool dup) {
  send_ack a{msgs.front().conv, msgs.front().seq, msgs.back().seq, {}, msgs.front().ts, dup};
  for (const auto& m : msgs)
    a.mids.push_back(m.mid);
  return a;
}

// Answers a resend whose cmids are committed already: the original ack
// with dup:true, or bad_frame for a batch that mixes committed and new
// cmids. False when none of them is committed (a new send).
bool answer_committed(self_ptr self, const std::string& user,
                      const std::vector<send_item>& items,
                      caf::typed_response_promise<send_ack>& rp) {
  auto& st = self->state;
  std::vector<storage::dedupe_entry> found;
  {
    auto t = st.ctx->store->read();
    for (const auto& item : items)
      if (auto d = st.ctx->store->dedupe(t, user, item.cmid, now_ms() / 1000))
        found.push_back(std::move(*d));
  }
  if (found.empty())
    return false;
  if (found.size() != items.size()) {
    rp.deliver(make_error(errc::bad_frame, "batch mixes committed and new cmids"));
    return true;
  }
  send_ack a{found.front().conv, UINT64_MAX, 0, {}, found.front().ts, true};
  for (const auto& d : found) {
    a.first_seq = std::min(a.first_seq, d.seq);
    a.last_seq = std::max(a.last_seq, d.seq);
    a.mids.push_back(d.mid);
  }
  st.ctx->metrics->duplicates++;
  rp.deliver(std::move(a));
  return true;
}

// A request naming a cmid that is in flight (in any position of its
// batch) waits for that commit; true when it was parked.
bool wait_inflight(self_ptr self, const std::string& user, std::vector<send_item>& items,
                   caf::typed_response_promise<send_ack>& rp) {
  auto& st = self->state;
  for (const auto& item : items)
    if (auto i = st.inflight.find(inflight_key(user, item.cmid)); i != st.inflight.end()) {
      i->second->push_back({std::move(items), std::move(rp)});
      return true;
    }
  return false;
}

// Read diffusion for rooms and for groups above the threshold: one shared
// timeline, pushed through the node's fanout actor, no inbox copies.
diffusion mode(const conversation_state& st) {
  return diffusion_for(st.id.kind, st.members.size(), st.ctx->cfg.large_group);
}

// Who hears of a timeline: membership and membership changes go to every
// node (a joiner may be online where nobody else is); messages and typing
// only to nodes with members online.
enum class reach { every_node, nodes_with_members };

// To this node's fanout actor and the up peers' ones: one message per
// node, never one per member. A message (timeline_atom) is counted when it
// crosses.
template <class... Ts>
void to_fanouts(self_ptr self, reach r, const Ts&... xs) {
  auto* ctx = self->state.ctx;
  constexpr bool counted = std::is_same<std::tuple_element_t<0, std::tuple<Ts...>>, timeline_atom>::value;
  self->send(ctx->fanout, xs...);
  for (const auto& [name, fanout] : ctx->dir->peer_fanouts()) {
    if (r == reach::nodes_with_members && !self->state.interested.count(fanout.address()))
      continue;
    tell(self, ctx, fanout, xs...);
    if (counted)
      ctx->metrics->cluster_timeline_sent++;
  }
}

void tell_fanout(self_ptr self, std::vector<std::string> added, std::vector<std::string> removed,
                 bool reset) {
  to_fanouts(self, reach::every_node, members_atom::value, self->state.id.name, added, removed,
             reset);
}

// Parks a reply until its commit: the state answers it if the actor dies.
uint64_t park(self_ptr self, caf::response_promise rp) {
  auto id = ++self->state.last_reply;
  self->state.replies.emplace(id, std::move(rp));
  return id;
}

template <class T>
void answer(self_ptr self, uint64_t id, T&& x) {
  auto& replies = self->state.replies;
  if (auto i = replies.find(id); i != replies.end()) {
    i->second.deliver(std::forward<T>(x));
    replies.erase(i);
  }
}

// A message of this conversation with the next seq and a fresh mid.
message next_message(self_ptr self, const std::string& from, int64_t ts) {
  auto& st = self->state;
  message m;
  m.conv = st.id.name;
  m.seq = ++st.assigned;
  m.mid = st.ctx->mids->next();
  m.from = from;
  m.ts = ts;
  return m;
}

using extra_write = std::function<void(storage::store&, storage::txn&)>;

// Members and roles as the store has them (after a failed commit too).
void load_members(self_ptr self) {
  auto& st = self->state;
  if (st.id.kind == conv_kind::dm) {
    st.members = dm_members(st.id);
    return;
  }
  st.roles.clear();
  st.members.clear();
  auto t = st.ctx->store->read();
  for (auto& [user, role] : st.ctx->store->members(t, st.id.name)) {
    st.members.push_back(user);
    st.roles.emplace(std::move(user), std::move(role));
  }
}

// Commits consecutive messages (and `extra` in the same transaction); once
// committed, copies them into `audience`'s inboxes (or hands them to the
// fanout actor, for a timeline), then calls `done` (nullptr: committed).
// Nothing is acked or pushed before the commit.
void commit(self_ptr self, std::vector<message> msgs, extra_write extra,
            storage::list_update list, std::vector<std::string> audience,
            std::function<void(const caf::error*)> done) {
  auto& st = self->state;
  // The mode is decided in mailbox order, with the seq: a switch falls
  // between two messages, never across one.
  auto timeline = mode(st) == diffusion::timeline;
  auto expires = msgs.front().ts / 1000 + static_cast<int64_t>(st.ctx->cfg.dedupe_ttl);
  auto epoch = st.epoch;
  auto kind = static_cast<uint8_t>(st.id.kind);
  write_job job{[msgs, kind, expires, list = std::move(list), extra](storage::store& s,
                                                                     storage::txn& t) {
    auto rc = s.commit_messages(t, msgs.front().conv, kind, msgs, expires, list);
    if (rc == errc::none && extra)
      extra(s, t);
    return rc;
  }};
  self->request(st.ctx->writer, caf::infinite, std::move(job))
    .then(
      [=](ok_atom) {
        self->state.committed = msgs.back().seq;
        for (const auto& m : msgs) {
          if (timeline)
            to_fanouts(self, m.type == "system" ? reach::every_node : reach::nodes_with_members,
                       timeline_atom::value, m);
          start_fanout(self, m, timeline ? std::vector<std::string>{} : audience);
          if (timeline && !m.mentions.empty())
            tell_mentioned(self, m);
          notify_after(self, m);
        }
        done(nullptr);
      },
      [=](caf::error& e) {
        auto& st = self->state;
        // Every later seq handed out in this epoch fails too (the store
        // wants k-1 before k): those senders hear the first failure's
        // cause, not the gap it left. Start again after the last
        // committed one, with the membership the store has.
        if (epoch != st.epoch) {
          done(&st.epoch_failure);
          return;
        }
        st.epoch_failure = e;
        done(&e);
        st.epoch++;
        load_state(self);
      });
}

// Runs the staged operations that are ready, from the front: a send whose
// verdicts are in waits for every operation that arrived before it.
void drain(self_ptr self) {
  auto& staged = self->state.staged;
  while (!staged.empty() && staged.front()->ready) {
    auto op = std::move(staged.front());
    staged.pop_front();
    op->run();
  }
}

// Queues an operation behind the staged sends, ready to run in its turn.
void stage_ready(self_ptr self, std::function<void()> run) {
  auto op = std::make_shared<conversation_state::staged_op>();
  op->ready = true;
  op->run = std::move(run);
  self->state.staged.push_back(std::move(op));
  drain(self);
}

using verdict_done = std::function<void(const caf::error*, plugin::draft)>;
using before_slots = hook_slots<plugin::before_persist_actor>;

bool valid_rewrite(const node_context* ctx, const plugin::verdict& v) {
  if (v.body.size() > ctx->cfg.max_frame)
    return false;
  auto ex = json::parse(v.ex, nullptr, false);
  return !ex.is_discarded() && ex.is_object();
}

// Asks the before_persist hooks from the k-th on, each seeing the one
// before's rewrite; done(refusal or nullptr, final draft). A missed
// deadline, a dead plugin or an invalid rewrite applies the hook's policy.
void run_before(self_ptr self, std::shared_ptr<const before_slots> slots, size_t k,
                plugin::draft d, verdict_done done) {
  if (k == slots->size())
    return done(nullptr, std::move(d));
  const auto& slot = (*slots)[k];
  auto failed = [=](std::string why) mutable {
    slot->counters.failures.fetch_add(1, std::memory_order_relaxed);
    if (slot->options().on_failure == plugin::policy::fail_closed) {
      slot->counters.rejected.fetch_add(1, std::memory_order_relaxed);
      auto e = make_error(errc::rejected, slot->plugin() + " gave no verdict (" + why
                                            + "); its policy is fail-closed");
      return done(&e, std::move(d));
    }
    run_before(self, slots, k + 1, std::move(d), done);
  };
  auto h = slot->actor();
  if (!h)
    return failed("not running");
  slot->counters.calls.fetch_add(1, std::memory_order_relaxed);
  self->request(h, slot->options().deadline, plugin::before_persist_atom::value, d)
    .then(
      [=](plugin::verdict& v) mutable {
        switch (v.what) {
          case plugin::decision::accept:
            break;
          case plugin::decision::rewrite:
            if (!valid_rewrite(self->state.ctx, v))
              return failed("invalid rewrite");
            d.body = std::move(v.body);
            d.ex = std::move(v.ex);
            break;
          case plugin::decision::reject: {
            slot->counters.rejected.fetch_add(1, std::memory_order_relaxed);
            auto e = make_error(errc::rejected, v.reason.empty() ? slot->plugin() + " rejected it"
                                                                 : v.reason);
            return done(&e, std::move(d));
          }
        }
        run_before(self, slots, k + 1, std::move(d), done);
      },
      [=](caf::error& e) mutable { failed(self->system().render(e)); });
}

// Registers a send's cmids as in flight: a resend naming one of them
// waits (in the returned list) for this one's outcome.
using waiter_list = std::shared_ptr<std::vector<conversation_state::waiter>>;

waiter_list begin_send(self_ptr self, const std::string& user,
                       const std::vector<send_item>& items) {
  auto waiters = std::make_shared<std::vector<conversation_state::waiter>>();
  for (const auto& item : items)
    self->state.inflight.emplace(inflight_key(user, item.cmid), waiters);
  return waiters;
}

void end_send(self_ptr self, const std::string& user, const std::vector<send_item>& items) {
  for (const auto& item : items)
    self->state.inflight.erase(inflight_key(user, item.cmid));
}

// A send that did not commit: its requester and everyone who waited for it
// learn why.
void fail_send(self_ptr self, uint64_t reply, const waiter_list& waiters, const caf::error& e) {
  answer(self, reply, e);
  for (auto& w : *waiters)
    w.rp.deliver(e);
}

// Assigns the next seqs to `items`, commits them and answers `reply`.
void commit_send(self_ptr self, const std::string& user, const std::string& device,
                 std::vector<send_item> items, uint64_t reply, waiter_list waiters) {
  auto ts = now_ms();
  std::vector<message> msgs;
  msgs.reserve(items.size());
  for (auto& item : items) {
    auto m = next_message(self, user, ts);
    m.device = device;
    m.cmid = std::move(item.cmid);
    m.type = std::move(item.type);
    m.body = std::move(item.body);
    m.ex = std::move(item.ex);
    m.prio = item.prio;
    m.mentions = std::move(item.mentions);
    msgs.push_back(std::move(m));
  }
  // The conversation list: an inbox-mode message moves every member's
  // entry; a timeline-mode one moves none.
  storage::list_update list;
  list.was = list.now = mode(self->state);
  if (list.now == diffusion::inbox)
    list.members = self->state.members;
  commit(self, msgs, nullptr, std::move(list), self->state.members,
         [=](const caf::error* e) mutable {
    for (const auto& m : msgs)
      self->state.inflight.erase(inflight_key(user, m.cmid));
    if (e)
      return fail_send(self, reply, waiters, *e);
    self->state.ctx->metrics->messages_accepted += msgs.size();
    answer(self, reply, ack_of(msgs, false));
    // Judged as resends now, not handed this batch's ack: a waiter may name
    // part of it, or cmids still in flight elsewhere (it waits again).
    for (auto& w : *waiters)
      if (!wait_inflight(self, user, w.items, w.rp)
          && !answer_committed(self, user, w.items, w.rp))
        w.rp.deliver(make_error(errc::unavailable, "resend"));   // dedupe entry gone already
  });
}

// A send of a conversation with before_persist hooks: every item asks
// them at once; the send commits in its turn once all have answered, or
// fails whole if one refused (nothing stored, no seq used).
void stage_send(self_ptr self, const std::string& user, const std::string& device,
                std::vector<send_item> items, uint64_t reply, waiter_list waiters) {
  auto& st = self->state;
  auto op = std::make_shared<conversation_state::staged_op>();
  st.staged.push_back(op);
  auto slots = std::make_shared<const before_slots>(st.hooks.before);
  auto batch = std::make_shared<std::vector<send_item>>(std::move(items));
  auto left = std::make_shared<size_t>(batch->size());
  auto refusal = std::make_shared<caf::error>();
  for (size_t i = 0; i < batch->size(); ++i) {
    auto& item = (*batch)[i];
    plugin::draft d{st.id.name, user, device, item.type, item.body,
                    item.ex.empty() ? "{}" : item.ex};
    run_before(self, slots, 0, std::move(d), [=](const caf::error* e, plugin::draft d) {
      auto& it = (*batch)[i];
      if (e && !*refusal)
        *refusal = *e;
      it.body = std::move(d.body);
      it.ex = d.ex == "{}" ? std::string{} : std::move(d.ex);
      if (--*left > 0)
        return;
      op->ready = true;
      op->run = [=]() {
        if (*refusal) {
          end_send(self, user, *batch);
          return fail_send(self, reply, waiters, *refusal);
        }
        commit_send(self, user, device, std::move(*batch), reply, waiters);
      };
      drain(self);
    });
  }
}

bool owner_of(const conversation_state& st, const std::string& user) {
  auto i = st.roles.find(user);
  return st.id.kind == conv_kind::group && i != st.roles.end() && i->second == member_role::owner;
}

// Each item's mentions as stored: members only, @all for the owner (and
// the server's `system`).
std::optional<caf::error> resolve_all_mentions(const conversation_state& st,
                                               const std::string& user,
                                               std::vector<send_item>& items) {
  auto may_all = user == system_user || owner_of(st, user);
  auto member = [&](const std::string& u) { return is_member(st, u); };
  for (auto& item : items) {
    if (item.mentions.empty())
      continue;
    auto resolved = resolve_mentions(item.mentions, user, may_all, member);
    if (!resolved)
      return make_error(resolved.error().code, resolved.error().msg);
    item.mentions = std::move(*resolved);
  }
  return std::nullopt;
}

// Commits `items` (already checked) in their turn: at once, or behind the
// staged sends and through the before_persist hooks.
void commit_in_turn(self_ptr self, const std::string& user, const std::string& device,
                    std::vector<send_item> items, uint64_t reply, waiter_list waiters) {
  auto& st = self->state;
  if (st.hooks.before.empty() && st.staged.empty())
    commit_send(self, user, device, std::move(items), reply, std::move(waiters));
  else
    stage_send(self, user, device, std::move(items), reply, std::move(waiters));
}

// A recall or edit: checked against the stored original, then committed as
// the conversation's next message (the store amends the original in the
// same transaction). A recall retried after it committed answers the
// recall's own seq again.
caf::result<send_ack> handle_amend(self_ptr self, amend_op op, const std::string& user,
                                   const std::string& device, uint64_t seq, std::string& body) {
  auto& st = self->state;
  if (st.id.kind == conv_kind::group && st.assigned == 0)
    return make_error(errc::not_found, "no such group " + st.id.name);
  if (!is_member(st, user))
    return make_error(errc::forbidden, "not a member of " + st.id.name);
  std::optional<message> original;
  if (seq > 0 && seq <= st.committed) {
    auto t = st.ctx->store->read();
    original = st.ctx->store->message_at(t, st.id.name, seq);
  }
  if (!original)
    return make_error(errc::not_found, "no message " + std::to_string(seq) + " in " + st.id.name);
  if (op == amend_op::recall && original->recalled_by != 0)
    return send_ack{st.id.name, original->recalled_by, original->recalled_by, {0}, 0, true};
  std::string why;
  auto window_ms = static_cast<int64_t>(st.ctx->cfg.recall_window) * 1000;
  if (auto rc = may_amend(op, *original, user, owner_of(st, user), now_ms(), window_ms, why);
      rc != errc::none)
    return make_error(rc, why);
  send_item item;
  item.type = std::string{to_string(op)};
  item.ex = amend_ex(seq);
  if (op == amend_op::edit)
    item.body = std::move(body);
  auto rp = self->make_response_promise<send_ack>();
  commit_in_turn(self, user, device, {std::move(item)}, park(self, rp),
                 std::make_shared<std::vector<conversation_state::waiter>>());
  return rp;
}

caf::result<send_ack> handle_send(self_ptr self, const std::string& user,
                                  const std::string& device, std::vector<send_item>& items) {
  auto& st = self->state;
  if (items.empty())
    return make_error(errc::bad_frame, "no messages");
  if (st.id.kind == conv_kind::group && st.assigned == 0)
    return make_error(errc::not_found, "no such group " + st.id.name);
  if (user != system_user && !is_member(st, user))
    return make_error(errc::forbidden, "not a member of " + st.id.name);
  if (auto e = resolve_all_mentions(st, user, items))
    return *e;
  auto rp = self->make_response_promise<send_ack>();
  if (wait_inflight(self, user, items, rp) || answer_committed(self, user, items, rp))
    return rp;
  auto waiters = begin_send(self, user, items);
  commit_in_turn(self, user, device, std::move(items), park(self, rp), std::move(waiters));
  return rp;
}

using role_list = std::vector<std::pair<std::string, member_role>>;

// A system message announcing a membership change, committed together
// with the change itself. `audience`: who gets the announcement.
void change_members(self_ptr self, const std::string& actor, group_op op, const role_list& added,
                    const std::vector<std::string>& removed, std::vector<std::string> audience,
                    uint64_t reply) {
  auto& st = self->state;
  json body{{"op", to_string(op)}, {"members", json::array()}};
  for (const auto& kv : added)
    body["members"].push_back(kv.first);
  for (const auto& u : removed)
    body["members"].push_back(u);
  auto m = next_message(self, actor, now_ms());
  m.type = "system";
  m.body = body.dump();
  auto was_timeline = mode(st) == diffusion::timeline;
  for (const auto& [user, role] : added)
    st.roles[user] = role;
  for (const auto& user : removed)
    st.roles.erase(user);
  st.members.clear();
  for (const auto& kv : st.roles)
    st.members.push_back(kv.first);
  load_hooks(self);
  auto now_timeline = mode(st) == diffusion::timeline;
  auto from_seq = m.seq;
  // Joiners hear of timeline messages from this one on: tell the fanout
  // before the message goes out; leavers after it (they get the notice).
  if (now_timeline && !was_timeline) {
    tell_fanout(self, st.members, {}, true);
  } else if (now_timeline && !added.empty()) {
    std::vector<std::string> users;
    for (const auto& kv : added)
      users.push_back(kv.first);
    tell_fanout(self, users, {}, false);
  }
  // Back to inbox copies: every receiver's inbox continues at this seq.
  auto resume_inboxes = was_timeline && !now_timeline ? audience : std::vector<std::string>{};
  auto change = [conv = st.id.name, added, removed, from_seq, resume_inboxes](storage::store& s,
                                                                            storage::txn& t) {
    s.change_members(t, conv, added, removed, from_seq);
    for (const auto& user : resume_inboxes)
      s.set_delivered(t, user, conv, from_seq - 1);
  };
  storage::list_update list;
  list.was = was_timeline ? diffusion::timeline : diffusion::inbox;
  list.now = mode(st);
  list.removed = removed;
  if (!now_timeline || !was_timeline) {
    list.members = st.members;
  } else {
    for (const auto& kv : added)
      list.members.push_back(kv.first);
  }
  commit(self, {m}, change, std::move(list), std::move(audience),
         [=](const caf::error* e) mutable {
    if (!e && now_timeline && !removed.empty())
      tell_fanout(self, {}, removed, false);
    if (!e && was_timeline && !now_timeline)
      tell_fanout(self, {}, {}, true);
    if (e)
      answer(self, reply, *e);
    else
      answer(self, reply, ok_atom::value);
  });
}

bool listed(const role_list& users, const std::string& u) {
  return std::any_of(users.begin(), users.end(), [&](auto& kv) { return kv.first == u; });
}

// Rooms are open: anyone joins, anyone leaves.
void handle_room(self_ptr self, group_op op, const std::string& actor, uint64_t reply) {
  auto member = self->state.roles.count(actor) > 0;
  switch (op) {
    case group_op::join:
      if (member)
        return answer(self, reply, ok_atom::value);
      return change_members(self, actor, op, {{actor, member_role::member}}, {}, {}, reply);
    case group_op::leave:
      if (!member)
        return answer(self, reply, ok_atom::value);
      return change_members(self, actor, op, {}, {actor}, {}, reply);
    default:
      return answer(self, reply, make_error(errc::bad_frame, "rooms have no managed membership: join or leave"));
  }
}

// Answers `reply` (parked: the operation may run later, behind staged sends).
void handle_group(self_ptr self, group_op op, const std::string& actor,
                  const std::vector<std::string>& users, uint64_t reply) {
  auto& st = self->state;
  if (st.id.kind == conv_kind::room)
    return handle_room(self, op, actor, reply);
  if (st.id.kind != conv_kind::group || op == group_op::join || op == group_op::leave)
    return answer(self, reply, make_error(errc::bad_frame, "only g: conversations have managed membership"));
  if (op == group_op::create) {
    if (st.assigned > 0)
      return answer(self, reply, make_error(errc::forbidden, st.id.name + " exists already"));
    role_list added{{actor, member_role::owner}};
    for (const auto& u : users)
      if (!listed(added, u))
        added.emplace_back(u, member_role::member);
    std::vector<std::string> audience;
    for (const auto& kv : added)
      audience.push_back(kv.first);
    return change_members(self, actor, op, added, {}, audience, reply);
  }
  if (st.assigned == 0)
    return answer(self, reply, make_error(errc::not_found, "no such group " + st.id.name));
  auto owner = st.roles.find(actor);
  if (owner == st.roles.end() || owner->second != member_role::owner)
    return answer(self, reply, make_error(errc::forbidden, "only the owner of " + st.id.name + " changes its members"));
  if (op == group_op::add) {
    role_list added;
    for (const auto& u : users)
      if (!st.roles.count(u) && !listed(added, u))
        added.emplace_back(u, member_role::member);
    if (added.empty())
      return answer(self, reply, ok_atom::value);
    auto audience = st.members;
    for (const auto& kv : added)
      audience.push_back(kv.first);
    return change_members(self, actor, op, added, {}, audience, reply);
  }
  // remove: the removed members get the announcement too
  std::vector<std::string> removed;
  for (const auto& u : users) {
    if (u == actor)
      return answer(self, reply, make_error(errc::bad_frame, "the owner cannot be removed"));
    if (st.roles.count(u) && std::find(removed.begin(), removed.end(), u) == removed.end())
      removed.push_back(u);
  }
  if (removed.empty())
    return answer(self, reply, ok_atom::value);
  return change_members(self, actor, op, {}, removed, st.members, reply);
}

// Members, seqs and the fan-out watermark as the store has them; finishes
// a fan-out a crash cut short.
void load_state(self_ptr self) {
  auto& st = self->state;
  load_members(self);
  load_hooks(self);
  if (mode(st) == diffusion::timeline)
    tell_fanout(self, st.members, {}, true);
  {
    auto t = st.ctx->store->read();
    if (auto meta = st.ctx->store->conv(t, st.id.name)) {
      st.assigned = st.committed = meta->last_seq;
      st.fanout_done = st.fanout_persisted = meta->fanout_seq;
    }
  }
  if (st.fanout_done < st.committed) {
    spdlog::info("{}: finishing fan-out of seq {}..{}", st.id.name, st.fanout_done + 1,
                 st.committed);
    refanout(self);
  }
}

// No message for --actor-idle-s: stop if nothing lives only here (every
// seq committed and in every inbox, the watermark stored, no request,
// verdict, lookup or remote interest pending). The next use spawns a
// fresh actor that reads the same state back from LMDB. A request whose
// sender looked this actor up just before the retirement meets a stopped
// actor and is answered `unavailable`, which clients retry (by cmid).
void stop_if_idle(self_ptr self) {
  auto& st = self->state;
  bool settled = st.assigned == st.committed && st.fanout_persisted == st.committed
                 && !st.fanout_write_pending && !st.fanout_retry_scheduled
                 && st.outstanding.empty() && st.inflight.empty() && st.replies.empty()
                 && st.staged.empty() && st.interested.empty() && st.inboxes.waiting.empty();
  if (st.ctx->cfg.actor_idle_s == 0 || !settled
      || !st.ctx->dir->retire_conversation(st.id.name, self->address()))
    return;
  st.ctx->metrics->idle_stops.add(metrics::idle_conversation);
  self->quit();
}

} // namespace

conversation_actor::behavior_type conversation_fun(self_ptr self, const node_context* ctx,
                                                   conv_id id) {
  auto& st = self->state;
  st.ctx = ctx;
  st.id = std::move(id);
  log_stray_errors(self);
  ctx->metrics->conversation_actors++;
  self->attach_functor([stats = ctx->metrics] { stats->conversation_actors--; });
  // A crashed predecessor's commits may still wait at the writer: a no-op
  // job behind them tells when they are done, and `await` holds every
  // request until then, so the state read below is the final one.
  write_job barrier{[](storage::store&, storage::txn&) { return errc::none; }};
  self->request(ctx->writer, caf::infinite, std::move(barrier))
    .await([=](ok_atom) { load_state(self); },
           [=](caf::error& e) { self->quit(e); });
  return {
    [=](send_atom, std::string& user, std::string& device, std::vector<send_item>& items) {
      count_received(self, self->state.ctx);
      if (ctx->cfg.fault_injection && ctx->stall_next_send.exchange(false))
        return caf::result<send_ack>{self->make_response_promise<send_ack>()};   // dropped
      return handle_send(self, user, device, items);
    },
    [=](group_atom, group_op op, std::string& actor,
        std::vector<std::string>& users) -> caf::result<ok_atom> {
      count_received(self, self->state.ctx);
      auto rp = self->make_response_promise<ok_atom>();
      auto reply = park(self, rp);
      if (self->state.staged.empty())
        handle_group(self, op, actor, users, reply);
      else   // behind the sends that arrived first
        stage_ready(self, [=] { handle_group(self, op, actor, users, reply); });
      return rp;
    },
    [=](amend_atom, amend_op op, std::string& user, std::string& device, uint64_t seq,
        std::string& body) {
      count_received(self, self->state.ctx);
      return handle_amend(self, op, user, device, seq, body);
    },
    [=](fanout_deadline_atom) { on_fanout_deadline(self); },
    [=](refanout_atom) {
      self->state.fanout_retry_scheduled = false;
      refanout(self);
    },
    // A node's fanout actor came up (again): it needs the membership of
    // this timeline before the messages that follow.
    // A node's fanout has members of this timeline online, or no longer.
    [=](interest_atom, fanout_actor& fanout, bool any) {
      if (any)
        self->state.interested.insert(fanout.address());
      else
        self->state.interested.erase(fanout.address());
    },
    [=](resync_atom, fanout_actor& fanout) {
      auto& st = self->state;
      if (mode(st) == diffusion::timeline)
        tell(self, st.ctx, fanout, members_atom::value, st.id.name, st.members,
             std::vector<std::string>{}, true);
    },
    // Typing is relayed to the other members' inboxes, never stored.
    [=](typing_atom, std::string& user) -> caf::result<ok_atom> {
      auto& st = self->state;
      count_received(self, st.ctx);
      if (st.id.kind == conv_kind::group && st.assigned == 0)
        return make_error(errc::not_found, "no such group " + st.id.name);
      if (!is_member(st, user))
        return make_error(errc::forbidden, "not a member of " + st.id.name);
      if (mode(st) == diffusion::timeline) {   // online members only, through the fanouts
        to_fanouts(self, reach::nodes_with_members, typing_atom::value, st.id.name, user);
        return ok_atom::value;
      }
      for (const auto& member : st.members)
        if (member != user)
          with_user(
            self, st.ctx, &st.inboxes, member,
            [=](const user_actor& inbox) {
              tell(self, self->state.ctx, inbox, typing_atom::value, self->state.id.name, user);
            },
            [](const caf::error&) {});   // never stored: a typing lost is no loss
      return ok_atom::value;
    },
    caf::after(idle_period(ctx)) >> [=] { stop_if_idle(self); },
  };
}

} // namespace imengine
