// The write path's actors with a real LMDB store and no socket: the
// storage writer, conversation and user actors.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/temp_dir.hpp"

#include <algorithm>
#include <future>
#include <thread>

#include "actors/conversation.hpp"
#include "actors/directory.hpp"
#include "actors/fanout.hpp"
#include "actors/messages.hpp"
#include "actors/node_actors.hpp"
#include "actors/node_context.hpp"
#include "actors/storage_writer.hpp"
#include "storage/store.hpp"

using namespace imengine;
using imengine::testing::temp_dir;
using namespace std::chrono_literals;

namespace {


// A node without network, assembled as the engine assembles it.
struct fixture {
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<node_actors> node;
  storage::store* store = nullptr;
  caf::actor_system* sys = nullptr;
  node_context* ctx = nullptr;
  directory* dir_ = nullptr;

  engine_config extra;   // what a test changes

  fixture() { open(); }
  explicit fixture(engine_config c) : extra(std::move(c)) { open(); }
  ~fixture() { close(); }

  void open() {
    engine_config c = extra;
    c.data = dir.path.string();
    c.sync = "none";
    c.map_size_mb = 64;
    node = std::make_unique<node_actors>(cfg, c);
    store = &node->store();
    sys = &node->system();
    ctx = &node->context();
    dir_ = &node->dir();
  }

  void close() { node.reset(); }

  caf::expected<send_ack> send(const std::string& conv, const std::string& user,
                               std::vector<send_item> items) {
    caf::scoped_actor self{*sys};
    caf::expected<send_ack> out{caf::error{}};
    self->request(dir_->conversation(*parse_conv(conv)), 10s, send_atom::value, user,
                  std::string{"dev"}, std::move(items))
      .receive([&](send_ack& a) { out = std::move(a); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  // Waits (deadline) until `user`'s inbox holds `n` copies.
  uint64_t wait_inbox(const std::string& user, uint64_t n) {
    auto until = std::chrono::steady_clock::now() + 10s;
    uint64_t head = 0;
    while (std::chrono::steady_clock::now() < until) {
      auto t = store->read();
      head = store->user(t, user).last_iseq;
      if (head >= n)
        break;
      std::this_thread::sleep_for(5ms);   // poll interval
    }
    return head;
  }
};

send_item item(std::string cmid, std::string body) {
  send_item i;
  i.cmid = std::move(cmid);
  i.body = std::move(body);
  return i;
}

} // namespace

TEST_CASE("a conversation assigns gapless seqs, dedupes and fans out to both inboxes") {
  fixture f;
  for (uint64_t i = 1; i <= 50; ++i) {
    auto a = f.send("dm:alice:bob", "alice", {item("c" + std::to_string(i), "m")});
    if (!a)
      FAIL("send failed: " << caf::to_string(a.error()));
    CHECK(a->first_seq == i);
    CHECK_FALSE(a->dup);
  }
  auto dup = f.send("dm:alice:bob", "alice", {item("c7", "m")});
  if (!dup)
    FAIL("resend failed");
  CHECK(dup->dup);
  CHECK(dup->first_seq == 7);
  auto denied = f.send("dm:alice:bob", "eve", {item("e1", "m")});
  REQUIRE_FALSE(denied);
  CHECK(to_failure(denied.error()).code == errc::forbidden);
  CHECK(f.wait_inbox("alice", 50) == 50);
  CHECK(f.wait_inbox("bob", 50) == 50);
  auto t = f.store->read();
  auto page = f.store->inbox_after(t, "bob", 0, 100);
  REQUIRE(page.items.size() == 50);
  for (uint64_t i = 0; i < 50; ++i) {
    CHECK(page.items[i].first == i + 1);
    CHECK(page.items[i].second.seq == i + 1);
  }
  // the sender's read position follows its own messages
  CHECK(f.store->user_conv_of(t, "alice", "dm:alice:bob").read_seq == 50);
  CHECK(f.store->user_conv_of(t, "bob", "dm:alice:bob").read_seq == 0);
}

TEST_CASE("a fan-out cut short by a crash is finished when the conversation starts") {
  fixture f;
  // Commit three messages the way the conversation does, but "crash"
  // before any inbox copy exists: only the store knows them.
  {
    std::vector<message> msgs;
    for (uint64_t i = 1; i <= 3; ++i) {
      message m;
      m.conv = "dm:alice:bob";
      m.seq = i;
      m.mid = 100 + i;
      m.from = "alice";
      m.cmid = "x" + std::to_string(i);
      m.body = "b" + std::to_string(i);
      msgs.push_back(m);
    }
    auto t = f.store->write();
    REQUIRE(f.store->commit_messages(t, "dm:alice:bob", 0, msgs, 1 << 30) == errc::none);
    // alice's inbox already got the first copy before the crash
    REQUIRE(f.store->append_inbox(t, "alice", 1, {msgs[0]}) == errc::none);
    t.commit();
  }
  f.dir_->conversation(*parse_conv("dm:alice:bob"));   // first use: recovers
  CHECK(f.wait_inbox("bob", 3) == 3);
  CHECK(f.wait_inbox("alice", 3) == 3);
  // watermark persisted, pending mark cleared, no duplicate copies
  auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    auto t = f.store->read();
    if (f.store->pending_fanouts(t).empty())
      break;
    std::this_thread::sleep_for(5ms);
  }
  auto t = f.store->read();
  CHECK(f.store->pending_fanouts(t).empty());
  CHECK(f.store->conv(t, "dm:alice:bob")->fanout_seq == 3);
  CHECK(f.store->user(t, "alice").last_iseq == 3);
  auto page = f.store->inbox_after(t, "alice", 0, 10);
  REQUIRE(page.items.size() == 3);
  CHECK(page.items[2].second.seq == 3);
  // and the next send continues at seq 4
  t.abort();
  auto a = f.send("dm:alice:bob", "bob", {item("y1", "next")});
  if (!a)
    FAIL("send failed");
  CHECK(a->first_seq == 4);
}

TEST_CASE("a copy an inbox here never confirms is sent again after the fan-out deadline") {
  engine_config c;
  c.fault_injection = true;
  c.fanout_timeout_ms = 200;
  fixture f(c);
  f.ctx->drop_next_deliver = true;   // the first inbox given the copy drops it
  auto a = f.send("dm:alice:bob", "alice", {item("c1", "m")});
  if (!a)
    FAIL("send failed: " << caf::to_string(a.error()));
  CHECK(f.wait_inbox("alice", 1) == 1);
  CHECK(f.wait_inbox("bob", 1) == 1);
  CHECK_FALSE(f.ctx->drop_next_deliver.load());   // the fault did happen
  // The retry resent from the watermark: one copy each, the watermark moved.
  auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    auto t = f.store->read();
    if (f.store->conv(t, "dm:alice:bob")->fanout_seq == 1)
      break;
    std::this_thread::sleep_for(5ms);   // poll interval
  }
  auto t = f.store->read();
  CHECK(f.store->conv(t, "dm:alice:bob")->fanout_seq == 1);
  CHECK(f.store->user(t, "alice").last_iseq == 1);
  CHECK(f.store->user(t, "bob").last_iseq == 1);
}

TEST_CASE("the writer commits a batch and fails only the job whose check fails") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  auto job_for = [](uint64_t first_iseq) {
    return write_job{[first_iseq](storage::store& s, storage::txn& t) {
      message m;
      m.conv = "dm:a:b";
      m.seq = first_iseq;
      return s.append_inbox(t, "a", first_iseq, {m});
    }};
  };
  // 1 fits, 5 does not (gap), 2 fits after 1.
  std::vector<bool> ok;
  for (uint64_t iseq : {1, 5, 2})
    self->send(f.ctx->writer, job_for(iseq));   // one-way: no reply awaited
  for (uint64_t iseq : {3, 9})
    self->request(f.ctx->writer, 10s, job_for(iseq))
      .receive([&](ok_atom) { ok.push_back(true); }, [&](caf::error&) { ok.push_back(false); });
  CHECK(ok == std::vector<bool>{true, false});
  auto t = f.store->read();
  CHECK(f.store->user(t, "a").last_iseq == 3);
}

TEST_CASE("unread over 1,000 conversations reads the same keys however long their history") {
  fixture f;
  constexpr int convs = 1000;
  // alice's conversations, written the way conversations write them
  auto add_messages = [&](uint64_t from, uint64_t count) {
    auto t = f.store->write();
    for (int c = 0; c < convs; ++c) {
      auto peer = "p" + std::to_string(1000 + c);
      auto conv = "dm:alice:" + peer;
      std::vector<message> msgs;
      for (uint64_t seq = from; seq < from + count; ++seq) {
        message m;
        m.conv = conv;
        m.seq = seq;
        m.mid = seq;
        m.from = peer;
        m.cmid = conv + "-" + std::to_string(seq);
        m.ts = 1;
        msgs.push_back(m);
      }
      REQUIRE(f.store->commit_messages(t, conv, 0, msgs, 1 << 30,
                                       {diffusion::inbox, diffusion::inbox, {"alice", peer}, {}}) == errc::none);
    }
    t.commit();
  };
  auto cost_of_unread = [&](uint64_t expect_total) {
    caf::scoped_actor self{*f.sys};
    auto before = f.store->keys_read();
    uint64_t total = 0;
    size_t listed = 0;
    self->request(f.ctx->reader, 10s, unread_atom::value, std::string{"alice"})
      .receive(
        [&](std::vector<unread_entry>& entries) {
          listed = entries.size();
          for (auto& e : entries)
            total += e.last_seq - e.read_seq;
        },
        [&](caf::error& e) { FAIL("unread failed: " << caf::to_string(e)); });
    CHECK(listed == convs);
    CHECK(total == expect_total);
    return f.store->keys_read() - before;
  };
  add_messages(1, 1);
  cost_of_unread(convs);   // warm-up
  auto short_history = cost_of_unread(convs);
  add_messages(2, 50);
  auto long_history = cost_of_unread(convs * 51);
  CHECK(short_history == long_history);    // flat: no message is scanned
  CHECK(short_history <= 3 * convs + 2);   // about one key per position and per conversation
}

TEST_CASE("a cmid in flight in any position of a batch: the resend waits and is judged after the commit") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  // Hold the writer: every request below reaches the conversation's
  // mailbox before the first commit can be answered, so they all find
  // their originals in flight.
  std::promise<void> release;
  auto held = release.get_future().share();
  self->send(f.ctx->writer, write_job{[held](storage::store&, storage::txn&) {
    held.wait();
    return errc::none;
  }});
  auto conv = f.dir_->conversation(*parse_conv("dm:alice:bob"));
  auto ask = [&](std::vector<std::string> cmids) {
    std::vector<send_item> items;
    for (auto& c : cmids)
      items.push_back(item(c, "body " + c));
    return self->request(conv, 10s, send_atom::value, std::string{"alice"}, std::string{"dev"},
                         std::move(items));
  };
  auto a = ask({"x", "y"});         // original, seqs 1-2
  auto b = ask({"p", "q"});         // another original, seqs 3-4
  auto mixed = ask({"z", "y"});     // y in flight (in a), z new
  auto lone_y = ask({"y"});         // second cmid of a
  auto lone_q = ask({"q"});         // second cmid of b: waits for b, not a
  auto again_b = ask({"p", "q"});   // the whole of b again
  release.set_value();
  std::vector<caf::expected<send_ack>> r;
  for (auto* h : {&a, &b, &mixed, &lone_y, &lone_q, &again_b})
    h->receive([&](send_ack& x) { r.emplace_back(std::move(x)); },
               [&](caf::error& e) { r.emplace_back(std::move(e)); });
  REQUIRE(r.size() == 6);
  if (!r[0] || !r[1])
    FAIL("an original failed");
  CHECK(r[0]->first_seq == 1);
  CHECK(r[0]->last_seq == 2);
  CHECK_FALSE(r[0]->dup);
  CHECK(r[1]->first_seq == 3);
  CHECK(r[1]->last_seq == 4);
  REQUIRE(r[0]->mids.size() == 2);
  REQUIRE(r[1]->mids.size() == 2);
  if (r[2])
    FAIL_CHECK("[z,y] with y committed was accepted, seqs " << r[2]->first_seq << ".." << r[2]->last_seq);
  else
    CHECK(to_failure(r[2].error()).code == errc::bad_frame);
  if (!r[3])
    FAIL("resend of y failed: " << caf::to_string(r[3].error()));
  CHECK(r[3]->dup);
  CHECK(r[3]->first_seq == 2);   // y's own seq and mid, not the batch's
  CHECK(r[3]->mids == std::vector<uint64_t>{r[0]->mids[1]});
  if (!r[4])
    FAIL("resend of q failed: " << caf::to_string(r[4].error()));
  CHECK(r[4]->dup);
  CHECK(r[4]->first_seq == 4);
  CHECK(r[4]->mids == std::vector<uint64_t>{r[1]->mids[1]});
  if (!r[5])
    FAIL("resend of [p,q] failed: " << caf::to_string(r[5].error()));
  CHECK(r[5]->dup);
  CHECK(r[5]->first_seq == 3);
  CHECK(r[5]->last_seq == 4);
  CHECK(r[5]->mids == r[1]->mids);
  // The whole history: each cmid once, gapless.
  auto t = f.store->read();
  auto page = f.store->messages_after(t, "dm:alice:bob", 0, 100);
  std::vector<std::string> cmids;
  for (const auto& m : page.items)
    cmids.push_back(m.cmid);
  CHECK(std::count(cmids.begin(), cmids.end(), "y") == 1);
  CHECK(cmids == std::vector<std::string>{"x", "y", "p", "q"});
  for (size_t i = 0; i < page.items.size(); ++i)
    CHECK(page.items[i].seq == i + 1);
}
