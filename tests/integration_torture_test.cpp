// Crash torture: SIGKILL the engine at random moments, many times, under
// pipelined load on two dms, a small group (inbox copies: write diffusion)
// and a group over --large-group (one timeline: read diffusion), restart it
// on the same data each time, and check the whole store after every
// restart against what the clients were told:
//  - every acked message is in its conversation once, at its seq, with its
//    mid; seqs are gapless; a message stored without an ack stays where the
//    first check found it and is never there twice;
//  - one connection's sends to one conversation have increasing seqs;
//  - resending acked (and stored-but-unacked) cmids answers dup:true with
//    the original seq and mid;
//  - every inbox holds every message of its write-diffused conversations
//    exactly once, in seq order per conversation, at gapless iseqs, and no
//    copy of the timeline group.
// The kill points come from a seed, printed, and IMENGINE_TORTURE_SEED
// replays them (thread timing varies; the plan of kills does not).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;
using imengine::net::ws_client;

namespace {

constexpr int max_kills = 20;
constexpr auto time_budget = 40s;     // the kill loop stops starting rounds after this
constexpr size_t sends_per_round = 1500;   // per sender: every load loop ends by itself
constexpr size_t pipeline = 16;            // sends in flight per connection

// --large-group=3: g:small (3 members) gets inbox copies, g:big (5) is a
// timeline. --sync=full is the contract's durability mode; a SIGKILL leaves
// the page cache intact, so what this tests is that nothing is acked before
// its commit and that recovery finishes what a kill cut short, not fsync.
const std::vector<std::string> engine_args{"--large-group=3", "--sync=full"};
const std::vector<std::string> users{"ann", "ben", "cat", "dan", "eve"};
// Each sender's connection round-robins over its conversations; two senders
// share each conversation.
const std::vector<std::pair<std::string, std::vector<std::string>>> senders{
  {"ann", {"dm:ann:ben", "g:small", "g:big"}},
  {"ben", {"dm:ann:ben", "g:small"}},
  {"cat", {"dm:cat:dan", "g:small", "g:big"}},
  {"dan", {"dm:cat:dan", "g:big"}},
};
// Conversation -> the member whose check connection reads its history.
const std::map<std::string, std::string> reader_of{
  {"dm:ann:ben", "ben"}, {"dm:cat:dan", "dan"}, {"g:small", "cat"}, {"g:big", "eve"}};
// The write-diffused conversations whose copies each inbox holds.
const std::map<std::string, std::vector<std::string>> inbox_convs{
  {"ann", {"dm:ann:ben", "g:small"}}, {"ben", {"dm:ann:ben", "g:small"}},
  {"cat", {"dm:cat:dan", "g:small"}}, {"dan", {"dm:cat:dan"}}, {"eve", {}}};

struct position {
  uint64_t seq;
  std::string mid;
};

// cmid = "<user>.<n>", n = 1, 2, ... counting that user's new messages;
// body = cmid.
std::string user_of(const std::string& cmid) { return cmid.substr(0, cmid.find('.')); }
uint64_t count_of(const std::string& cmid) { return std::stoull(cmid.substr(cmid.find('.') + 1)); }

uint64_t seed_of_run() {
  if (const char* s = std::getenv("IMENGINE_TORTURE_SEED"))
    return std::stoull(s);
  std::random_device rd;
  return (uint64_t{rd()} << 32) | rd();
}

// What the clients were told, across all rounds. Sender threads write it
// under `mtx`; the checks run when no sender is left (`stored` changes
// only then).
struct ledger {
  std::mutex mtx;
  std::condition_variable cv;
  std::map<std::string, std::string> sent;   // cmid -> conv, every cmid sent
  // cmid -> its user's send counter at the send that can have committed it
  // (the last one before it was stored): stored seqs follow this order.
  std::map<std::string, uint64_t> sent_at;
  std::map<std::string, position> acked;     // cmid -> its ack
  std::map<std::string, position> stored;    // cmid -> where a check found it
  size_t resent = 0, dups = 0;               // outbox resends, and those answered dup:true
  std::vector<uint64_t> next_count = std::vector<uint64_t>(senders.size(), 1);
  std::vector<uint64_t> next_send = std::vector<uint64_t>(senders.size(), 1);
  // This round's load:
  size_t round_acks = 0;
  size_t senders_done = 0;   // all its sends acked, or its connection gone
  std::vector<std::string> errors;
};

// One sender, as a client with an outbox: first resends what it never saw
// acked (a stored one must answer dup:true at its seq), then pipelines new
// sends up to its bound, acks its pushes, and reads until the connection
// is gone. Acks that reached the client before the kill count, however
// late they are read.
void send_load(ledger& l, size_t i, ws_client& c) {
  const auto& [user, convs] = senders[i];
  std::vector<std::string> outbox;
  {
    std::lock_guard<std::mutex> g(l.mtx);
    for (auto& kv : l.sent)
      if (user_of(kv.first) == user && !l.acked.count(kv.first))
        outbox.push_back(kv.first);
  }
  std::sort(outbox.begin(), outbox.end(),
            [](auto& a, auto& b) { return count_of(a) < count_of(b); });
  size_t resent = 0, sent = 0, in_flight = 0;
  bool done = false;
  auto finish = [&] {
    if (done)
      return;
    done = true;
    std::lock_guard<std::mutex> g(l.mtx);
    l.senders_done++;
    l.cv.notify_all();
  };
  while (true) {
    while (in_flight < pipeline && (resent < outbox.size() || sent < sends_per_round)) {
      std::string cmid;
      std::string conv;
      {
        std::lock_guard<std::mutex> g(l.mtx);
        if (resent < outbox.size()) {
          cmid = outbox[resent++];
          l.resent++;
          conv = l.sent[cmid];
        } else {
          auto n = l.next_count[i]++;
          cmid = user + "." + std::to_string(n);
          conv = convs[n % convs.size()];
          l.sent[cmid] = conv;
          ++sent;
        }
        auto at = l.next_send[i]++;
        if (!l.stored.count(cmid))
          l.sent_at[cmid] = at;
      }
      auto f = send_frame(conv, cmid, cmid);
      f["req"] = count_of(cmid);   // an error reply names its send
      c.send(f);
      ++in_flight;
    }
    if (in_flight == 0)
      finish();   // keeps reading pushes until the kill
    auto f = c.next(5000ms);
    if (!f)
      break;   // closed by the kill, and drained (or 5 s of silence)
    auto t = f->value("t", "");
    if (t == "ack") {
      --in_flight;
      auto cmid = (*f)["cmid"].get<std::string>();
      position p{(*f)["seq"].get<uint64_t>(), (*f)["mid"].get<std::string>()};
      std::lock_guard<std::mutex> g(l.mtx);
      auto s = l.stored.find(cmid);
      if (f->value("dup", false) != (s != l.stored.end())
          || (s != l.stored.end() && (s->second.seq != p.seq || s->second.mid != p.mid)))
        l.errors.push_back((s != l.stored.end() ? "a stored cmid answered " : "a new cmid answered ")
                           + f->dump());
      l.dups += s != l.stored.end();
      l.acked[cmid] = p;
      l.round_acks++;
      l.cv.notify_all();
    } else if (t == "msg" && f->contains("iseq")) {
      c.send({{"t", "ack"}, {"iseq", (*f)["iseq"]}});
    } else if (t == "error") {
      --in_flight;
      std::lock_guard<std::mutex> g(l.mtx);
      l.errors.push_back(f->dump());
    }
  }
  finish();
}

// A kill point, drawn from the seed.
struct kill_plan {
  bool by_acks;      // after `n` acks of the round, else `n` ms into the load
  int n;
  int recovery_ms;   // >= 0: kill again that long after the restart, mid-recovery
};

kill_plan draw(std::mt19937_64& rng) {
  kill_plan p;
  p.by_acks = std::uniform_int_distribution<int>(0, 1)(rng) == 0;
  p.n = p.by_acks ? std::uniform_int_distribution<int>(1, 400)(rng)
                  : std::uniform_int_distribution<int>(0, 400)(rng);
  p.recovery_ms = std::uniform_int_distribution<int>(0, 3)(rng) == 0
                    ? std::uniform_int_distribution<int>(0, 8)(rng)
                    : -1;
  return p;
}

// Starts the load on every sender and SIGKILLs the engine at the plan's
// point; returns once every sender thread has ended.
void load_and_kill(engine_process& engine, ledger& l, const kill_plan& plan) {
  std::vector<std::unique_ptr<ws_client>> clients;
  for (auto& s : senders)
    clients.push_back(engine.login(s.first, "load"));
  {
    std::lock_guard<std::mutex> g(l.mtx);
    l.round_acks = 0;
    l.senders_done = 0;
  }
  std::vector<std::thread> threads;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < senders.size(); ++i)
    threads.emplace_back([&, i] { send_load(l, i, *clients[i]); });
  {
    std::unique_lock<std::mutex> lk(l.mtx);
    auto all_done = [&] { return l.senders_done == senders.size(); };
    if (plan.by_acks) {
      auto reached = [&] { return l.round_acks >= static_cast<size_t>(plan.n) || all_done(); };
      l.cv.wait_until(lk, start + 20s, reached);
      CHECK_MESSAGE(reached(), "only " << l.round_acks << " acks in 20 s");
    } else {
      l.cv.wait_until(lk, start + std::chrono::milliseconds(plan.n), all_done);
    }
  }
  engine.kill9();
  for (auto& t : threads)
    t.join();
}

// Checks the store against the ledger, on a freshly restarted engine. The
// first problem ends the test: it and the seed are what a reader needs.
void check_store(engine_process& engine, ledger& l, std::mt19937_64& rng) {
  std::map<std::string, std::unique_ptr<ws_client>> conns;
  for (auto& u : users)
    conns[u] = engine.login(u, "check");

  // Timelines: gapless, each sent message once, at its ack, where it was.
  std::map<std::string, std::vector<json>> histories;
  for (auto& [conv, reader] : reader_of) {
    auto h = whole_history(*conns[reader], conv);
    auto at = [&](const std::string& cmid, const position& p) {
      INFO(conv << ": " << cmid << " expected at seq " << p.seq << ", history has " << h.size());
      REQUIRE(p.seq >= 1);
      REQUIRE(p.seq <= h.size());
      REQUIRE(h[p.seq - 1]["body"] == cmid);
      REQUIRE(h[p.seq - 1]["mid"] == p.mid);
    };
    for (auto& [cmid, p] : l.acked)
      if (l.sent[cmid] == conv)
        at(cmid, p);
    for (auto& [cmid, p] : l.stored)   // found by an earlier check, acked or not
      if (l.sent[cmid] == conv)
        at(cmid, p);
    std::set<std::string> seen;
    std::map<std::string, uint64_t> last_send;   // per sender
    for (size_t i = 0; i < h.size(); ++i) {
      auto& m = h[i];
      INFO(conv << " seq " << i + 1 << ": " << m.dump());
      REQUIRE(m["seq"] == i + 1);
      if (m["type"] == "system") {   // the group_create, nothing else
        REQUIRE(i == 0);
        continue;
      }
      auto cmid = m["body"].get<std::string>();
      REQUIRE(l.sent.count(cmid));   // nothing that was not sent
      REQUIRE(l.sent[cmid] == conv);
      REQUIRE(m["from"] == user_of(cmid));
      REQUIRE_MESSAGE(seen.insert(cmid).second, "stored twice");
      auto& last = last_send[user_of(cmid)];
      REQUIRE_MESSAGE(l.sent_at[cmid] > last, "out of its connection's send order");
      last = l.sent_at[cmid];
      l.stored.emplace(cmid, position{i + 1, m["mid"].get<std::string>()});
    }
    histories[conv] = std::move(h);
  }

  // Inboxes: copies commit after the ack, and a restart finishes a fan-out
  // the kill cut short, so each is waited for (with a deadline). Before
  // the resends below: a send would wake its conversation's fan-out.
  for (auto& u : users) {
    std::map<std::pair<std::string, uint64_t>, std::string> expected;   // (conv, seq) -> mid
    for (auto& conv : inbox_convs.at(u))
      for (auto& m : histories[conv])
        expected[{conv, m["seq"].get<uint64_t>()}] = m["mid"].get<std::string>();
    auto inbox = inbox_of_at_least(*conns[u], expected.size(), 10s);
    INFO(u << "'s inbox: " << inbox.size() << " copies, " << expected.size() << " expected");
    REQUIRE(inbox.size() == expected.size());
    std::set<std::pair<std::string, uint64_t>> seen;
    std::map<std::string, uint64_t> last_seq;
    for (size_t i = 0; i < inbox.size(); ++i) {
      auto& m = inbox[i];
      INFO("copy " << i << ": " << m.dump());
      REQUIRE(m["iseq"] == i + 1);
      std::pair<std::string, uint64_t> key{m["conv"].get<std::string>(), m["seq"].get<uint64_t>()};
      REQUIRE_MESSAGE(seen.insert(key).second, "copied twice");
      auto e = expected.find(key);
      REQUIRE_MESSAGE(e != expected.end(), "a copy of nothing stored in an inbox conversation");
      REQUIRE(m["mid"] == e->second);
      REQUIRE_MESSAGE(key.second > last_seq[key.first], "out of seq order");
      last_seq[key.first] = key.second;
    }
  }

  // Dedupe: a sample of acked cmids, and of stored ones never acked (the
  // kill came between commit and ack), resent by their user.
  std::vector<std::string> acked, unacked;
  for (auto& kv : l.stored)
    (l.acked.count(kv.first) ? acked : unacked).push_back(kv.first);
  std::vector<std::string> sample;
  std::sample(acked.begin(), acked.end(), std::back_inserter(sample), 12, rng);
  std::sample(unacked.begin(), unacked.end(), std::back_inserter(sample), 4, rng);
  for (auto& cmid : sample) {
    auto& p = l.stored[cmid];
    auto r = conns[user_of(cmid)]->request(send_frame(l.sent[cmid], cmid, cmid));
    INFO("resent " << cmid << " stored at seq " << p.seq << ": " << r.dump());
    REQUIRE(r["t"] == "ack");
    REQUIRE(r.value("dup", false) == true);
    REQUIRE(r["seq"] == p.seq);
    REQUIRE(r["mid"] == p.mid);
    l.acked[cmid] = p;   // acked now, if it was not
  }
}

} // namespace

TEST_CASE("repeated SIGKILLs under dm and group load lose, move and duplicate nothing") {
  const auto seed = seed_of_run();
  std::cout << "torture seed " << seed << " (IMENGINE_TORTURE_SEED=" << seed << " replays it)"
            << std::endl;
  INFO("IMENGINE_TORTURE_SEED=" << seed);
  // Two streams: the dedupe samples draw as many numbers as there are
  // stored messages (timing), which must not shift the kill points.
  std::mt19937_64 kill_rng(seed), sample_rng(seed ^ 0x9e3779b97f4a7c15);
  temp_dir dir;
  ledger l;
  auto began = std::chrono::steady_clock::now();

  engine_process engine(dir.str(), engine_args);
  {
    auto ann = engine.login("ann", "setup");
    auto create = [&](const std::string& conv, std::vector<std::string> members) {
      auto r = ann->request({{"t", "group_create"}, {"conv", conv}, {"members", members}});
      REQUIRE(r["t"] == "ok");
    };
    create("g:small", {"ben", "cat"});
    create("g:big", {"ben", "cat", "dan", "eve"});
  }
  check_store(engine, l, sample_rng);

  int kills = 0;
  while (kills < max_kills && std::chrono::steady_clock::now() - began < time_budget) {
    auto plan = draw(kill_rng);
    load_and_kill(engine, l, plan);
    ++kills;
    std::cout << "kill " << kills << ": " << (plan.by_acks ? "after " : "at ") << plan.n
              << (plan.by_acks ? " acks" : " ms") << ", " << l.round_acks << " acked this round"
              << std::endl;
    for (auto& e : l.errors)
      FAIL_CHECK("under load: " << e);
    REQUIRE(l.errors.empty());
    engine.restart();
    if (plan.recovery_ms >= 0 && kills < max_kills) {
      // A random moment of the recovery: the fan-out the kill cut short
      // is being finished. (The moment itself is what is random.)
      std::this_thread::sleep_for(std::chrono::milliseconds(plan.recovery_ms));
      engine.kill9();
      ++kills;
      std::cout << "kill " << kills << ": " << plan.recovery_ms << " ms into the recovery"
                << std::endl;
      engine.restart();
    }
    check_store(engine, l, sample_rng);
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
  std::cout << "survived " << kills << " kills in " << took.count() << " s: " << l.sent.size()
            << " sent, " << l.acked.size() << " acked, " << l.stored.size() << " stored; "
            << l.resent << " resent from outboxes, " << l.dups << " of them answered dup:true"
            << std::endl;
  MESSAGE("survived " << kills << " kills (seed " << seed << ")");
  CHECK(kills >= 1);
  CHECK(l.acked.size() >= 100);   // the load did run
}
