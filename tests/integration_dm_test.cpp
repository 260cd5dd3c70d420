// Direct messages end to end: ack after commit, inbox pushes to every
// device of both parties, dedupe, pipelining, batches, sync and history.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

TEST_CASE("send is acked with seq, mid and ts, and pushed to both parties with iseq") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto alice_web = engine.login("alice", "web");
  auto bob = engine.login("bob", "phone");
  auto ack = alice->request({{"t", "send"}, {"conv", "dm:alice:bob"}, {"cmid", "c-1"},
                             {"type", "text"}, {"body", "hi"}, {"ex", {{"k", "v"}}}});
  REQUIRE(ack["t"] == "ack");
  CHECK(ack["cmid"] == "c-1");
  CHECK(ack["conv"] == "dm:alice:bob");
  CHECK(ack["seq"] == 1);
  CHECK(ack["mid"].is_string());
  CHECK(ack["ts"].is_number_integer());
  CHECK_FALSE(ack.contains("dup"));
  for (auto* c : {alice.get(), alice_web.get(), bob.get()}) {
    auto push = c->wait_for(is_push(1));
    CHECK(push["conv"] == "dm:alice:bob");
    CHECK(push["seq"] == 1);
    CHECK(push["mid"] == ack["mid"]);
    CHECK(push["from"] == "alice");
    CHECK(push["device"] == "phone");
    CHECK(push["type"] == "text");
    CHECK(push["body"] == "hi");
    CHECK(push["ex"] == json{{"k", "v"}});
    CHECK(push["ts"] == ack["ts"]);
  }
  // bob's reply continues the conversation's seq and each inbox's iseq
  auto ack2 = bob->request(send_frame("dm:alice:bob", "b-1", "hello"));
  CHECK(ack2["seq"] == 2);
  CHECK(alice->wait_for(is_push(2))["body"] == "hello");
  CHECK(bob->wait_for(is_push(2))["body"] == "hello");
}

TEST_CASE("only the two users of a dm may send to it or read it") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto eve = engine.login("eve", "x");
  CHECK(eve->request(send_frame("dm:alice:bob", "e1", "psst"))["code"] == "forbidden");
  CHECK(eve->request({{"t", "history"}, {"conv", "dm:alice:bob"}})["code"] == "forbidden");
  CHECK(eve->request(send_frame("g:nope", "e2", "x"))["code"] == "not_found");
  // the session is unharmed
  CHECK(eve->request(send_frame("dm:bob:eve", "e3", "hi bob"))["t"] == "ack");
}

TEST_CASE("a resent cmid gets the original ack with dup:true and creates nothing") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto first = alice->request(send_frame("dm:alice:bob", "same", "once"));
  REQUIRE(first["t"] == "ack");
  auto again = alice->request(send_frame("dm:alice:bob", "same", "once"));
  CHECK(again["t"] == "ack");
  CHECK(again["dup"] == true);
  CHECK(again["seq"] == first["seq"]);
  CHECK(again["mid"] == first["mid"]);
  CHECK(again["ts"] == first["ts"]);
  auto next = alice->request(send_frame("dm:alice:bob", "other", "twice"));
  CHECK(next["seq"] == 2);
  auto h = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"after", 0}});
  CHECK(h["msgs"].size() == 2);
  // the same cmid from another user is another message
  auto bob = engine.login("bob", "phone");
  auto bobs = bob->request(send_frame("dm:alice:bob", "same", "mine"));
  CHECK_FALSE(bobs.contains("dup"));
  CHECK(bobs["seq"] == 3);
}

TEST_CASE("a cmid is remembered for --dedupe-ttl seconds, then it is a new message") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--dedupe-ttl=1"});
  auto alice = engine.login("alice", "phone");
  auto first = alice->request(send_frame("dm:alice:bob", "ttl", "one"));
  REQUIRE(first["seq"] == 1);
  CHECK(alice->request(send_frame("dm:alice:bob", "ttl", "one"))["dup"] == true);
  // Resend until the entry has expired (1-2 s); each dup creates nothing.
  json later;
  auto until = std::chrono::steady_clock::now() + 10s;
  do {
    later = alice->request(send_frame("dm:alice:bob", "ttl", "one"));
  } while (later.value("dup", false) && std::chrono::steady_clock::now() < until);
  CHECK_FALSE(later.contains("dup"));
  CHECK(later["seq"] == 2);
}

TEST_CASE("pipelined sends get increasing seqs in the order sent, pushes in iseq order") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  constexpr int n = 300;
  for (int i = 0; i < n; ++i) {
    auto f = send_frame("dm:alice:bob", "p" + std::to_string(i), std::to_string(i));
    f["req"] = 1000 + i;
    alice->send(f);
  }
  std::map<int64_t, uint64_t> seq_of_req;
  while (seq_of_req.size() < n) {
    auto a = alice->wait_for(is_type("ack"), 10000ms);
    seq_of_req[a["req"].get<int64_t>()] = a["seq"].get<uint64_t>();
  }
  uint64_t expect = 1;
  for (auto& [req, seq] : seq_of_req)
    CHECK(seq == expect++);
  // bob's pushes arrive gapless, in iseq order, bodies in send order
  for (uint64_t i = 1; i <= n; ++i) {
    auto p = bob->wait_for(is_type("msg"), 10000ms);
    REQUIRE(p["iseq"] == i);
    CHECK(p["body"] == std::to_string(i - 1));
    bob->send({{"t", "ack"}, {"iseq", i}});
  }
}

TEST_CASE("send_batch commits consecutive seqs atomically, and dedupes as a whole") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c0", "before"))["seq"] == 1);
  json batch{{"t", "send_batch"}, {"conv", "dm:alice:bob"},
             {"msgs", {{{"cmid", "b1"}, {"body", "one"}},
                       {{"cmid", "b2"}, {"body", "two"}, {"type", "note"}},
                       {{"cmid", "b3"}, {"body", "three"}}}}};
  auto ack = alice->request(batch);
  REQUIRE(ack["t"] == "ack_batch");
  CHECK(ack["conv"] == "dm:alice:bob");
  CHECK(ack["first_seq"] == 2);
  CHECK(ack["last_seq"] == 4);
  CHECK(ack["mids"].size() == 3);
  auto dup = alice->request(batch);
  CHECK(dup["t"] == "ack_batch");
  CHECK(dup["dup"] == true);
  CHECK(dup["first_seq"] == 2);
  CHECK(dup["mids"] == ack["mids"]);
  // mixing committed and new cmids is refused, nothing is written
  json mixed{{"t", "send_batch"}, {"conv", "dm:alice:bob"},
             {"msgs", {{{"cmid", "b3"}, {"body", "x"}}, {{"cmid", "b4"}, {"body", "y"}}}}};
  CHECK(alice->request(mixed)["code"] == "bad_frame");
  auto h = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"after", 0}});
  REQUIRE(h["msgs"].size() == 4);
  CHECK(h["msgs"][2]["type"] == "note");
  CHECK(h["msgs"][3]["body"] == "three");
}

TEST_CASE("unacked pushes are retransmitted; sync pages and acks; nothing is lost") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--retransmit-ms=150", "--max-retransmits=3"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  // alice's own device gets every push too: she acks each one
  uint64_t alice_iseq = 0;
  auto alice_sends = [&](const std::string& cmid, const std::string& body) {
    REQUIRE(alice->request(send_frame("dm:alice:bob", cmid, body))["t"] == "ack");
    alice->wait_for(is_push(++alice_iseq));
    alice->send({{"t", "ack"}, {"iseq", alice_iseq}});
  };
  alice_sends("r1", "again?");
  auto first = bob->wait_for(is_push(1));
  auto second = bob->wait_for(is_push(1), 3000ms);   // the retransmit
  CHECK(second["mid"] == first["mid"]);
  bob->send({{"t", "ack"}, {"iseq", 1}});
  // a client that never acks is closed with 4002 after max retransmits
  alice_sends("r2", "ignored");
  REQUIRE(bob->wait_closed(10000ms));
  CHECK(bob->close_code() == 4002);
  // ... while alice, who acks, stays; the message waits in bob's inbox
  for (int i = 3; i <= 7; ++i)
    alice_sends("r" + std::to_string(i), "m");
  CHECK(alice->request({{"t", "ping"}})["t"] == "pong");
  auto bob2 = engine.login("bob", "phone");
  auto p1 = bob2->request({{"t", "sync"}, {"after", 1}, {"limit", 3}});
  REQUIRE(p1["t"] == "sync_result");
  REQUIRE(p1["msgs"].size() == 3);
  CHECK(p1["more"] == true);
  CHECK(p1["msgs"][0]["iseq"] == 2);
  CHECK(p1["msgs"][0]["body"] == "ignored");
  auto p2 = bob2->request({{"t", "sync"}, {"after", 4}, {"limit", 3}});
  REQUIRE(p2["msgs"].size() == 3);
  CHECK(p2["msgs"][2]["iseq"] == 7);
  CHECK(p2["more"] == false);
}

TEST_CASE("asking for the next sync page acks the previous one") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--retransmit-ms=100", "--max-retransmits=2"});
  auto bob = engine.login("bob", "phone");
  {
    auto alice = engine.login("alice", "phone");
    for (int i = 1; i <= 3; ++i)
      REQUIRE(alice->request(send_frame("dm:alice:bob", "s" + std::to_string(i), "m"))["t"] == "ack");
  }
  // bob never sends an ack frame: only sync, whose `after` acks
  bob->wait_for(is_push(3));
  auto page = bob->request({{"t", "sync"}, {"after", 3}});
  CHECK(page["msgs"].empty());
  // Unacked, the window would be closed with 4002 after ~300 ms; acked by
  // the sync it stays open well past that.
  CHECK_FALSE(bob->wait_closed(1500ms));
  CHECK(bob->request({{"t", "ping"}})["t"] == "pong");
}

TEST_CASE("history pages ascending after and descending before") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  for (int i = 1; i <= 10; ++i)
    REQUIRE(alice->request(send_frame("dm:alice:bob", "h" + std::to_string(i), std::to_string(i)))["t"] == "ack");
  auto asc = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"after", 3}, {"limit", 4}});
  REQUIRE(asc["t"] == "history_result");
  CHECK(asc["conv"] == "dm:alice:bob");
  REQUIRE(asc["msgs"].size() == 4);
  CHECK(asc["msgs"][0]["seq"] == 4);
  CHECK(asc["msgs"][3]["seq"] == 7);
  CHECK_FALSE(asc["msgs"][0].contains("iseq"));
  CHECK(asc["more"] == true);
  auto desc = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"before", 3}, {"limit", 5}});
  REQUIRE(desc["msgs"].size() == 2);
  CHECK(desc["msgs"][0]["seq"] == 2);
  CHECK(desc["msgs"][1]["seq"] == 1);
  CHECK(desc["more"] == false);
  auto empty = alice->request({{"t", "history"}, {"conv", "dm:alice:carol"}});
  CHECK(empty["msgs"].empty());
}
