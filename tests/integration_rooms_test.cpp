// Read diffusion: rooms and groups above --large-group keep one shared
// timeline, pushed without iseq to online members, pulled with history by
// the others; switches between the modes lose and duplicate nothing; a
// slow reader gets `notify` instead of normal pushes, never prio 1 ones.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>

#include <map>
#include <set>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

auto is_msg(const std::string& conv, uint64_t seq) {
  return [conv, seq](const json& f) {
    return f.value("t", "") == "msg" && f.value("conv", "") == conv && f.value("seq", uint64_t{0}) == seq;
  };
}

json conv_frame(const std::string& t, const std::string& conv) {
  return json{{"t", t}, {"conv", conv}};
}

} // namespace

TEST_CASE("room members get timeline pushes without iseq; outsiders nothing; leavers stop") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  auto dave = engine.login("dave", "phone");
  CHECK(dave->request(send_frame("r:lobby", "d0", "hello?"))["code"] == "forbidden");
  for (auto* c : {alice.get(), bob.get(), carol.get()})
    REQUIRE(c->request(conv_frame("join", "r:lobby"))["t"] == "ok");
  CHECK(alice->request(conv_frame("join", "r:lobby"))["t"] == "ok");   // again: nothing new
  auto ack = alice->request(send_frame("r:lobby", "a1", "welcome"));
  REQUIRE(ack["seq"] == 4);   // three joins, then the message
  for (auto* c : {alice.get(), bob.get(), carol.get()}) {
    auto m = c->wait_for(is_msg("r:lobby", 4));
    CHECK(m["body"] == "welcome");
    CHECK_FALSE(m.contains("iseq"));
  }
  // nothing in the inboxes
  CHECK(bob->request({{"t", "sync"}, {"after", 0}})["msgs"].empty());
  auto h = bob->request({{"t", "history"}, {"conv", "r:lobby"}, {"after", 0}});
  REQUIRE(h["msgs"].size() == 4);
  CHECK(json::parse(h["msgs"][0]["body"].get<std::string>())["op"] == "join");
  CHECK(dave->request({{"t", "history"}, {"conv", "r:lobby"}})["code"] == "forbidden");
  // carol leaves: she gets her own leave notice, then nothing
  REQUIRE(carol->request(conv_frame("leave", "r:lobby"))["t"] == "ok");
  auto leave = carol->wait_for(is_msg("r:lobby", 5));
  CHECK(json::parse(leave["body"].get<std::string>())["op"] == "leave");
  REQUIRE(alice->request(send_frame("r:lobby", "a2", "after carol"))["seq"] == 6);
  CHECK(bob->wait_for(is_msg("r:lobby", 6))["body"] == "after carol");
  CHECK_THROWS(carol->wait_for(is_msg("r:lobby", 6), 500ms));
  CHECK(carol->request(send_frame("r:lobby", "c1", "hey"))["code"] == "forbidden");
  // typing reaches the other online members, not the typist
  alice->send(conv_frame("typing", "r:lobby"));
  CHECK(bob->wait_for(is_type("typing")) == json{{"t", "typing"}, {"conv", "r:lobby"}, {"user", "alice"}});
  CHECK_THROWS(alice->wait_for(is_type("typing"), 300ms));
  CHECK(dave->request(conv_frame("join", "g:notaroom"))["code"] == "bad_frame");
}

TEST_CASE("an offline room member sees the room in unread and pulls with history") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  {
    auto bob = engine.login("bob", "phone");
    REQUIRE(bob->request(conv_frame("join", "r:news"))["t"] == "ok");
  }
  REQUIRE(alice->request(conv_frame("join", "r:news"))["t"] == "ok");
  for (int i = 0; i < 3; ++i)
    REQUIRE(alice->request(send_frame("r:news", "n" + std::to_string(i), "story"))["t"] == "ack");
  auto bob = engine.login("bob", "phone");
  auto u = bob->request({{"t", "unread"}});
  CHECK(u["total"] == 4);   // alice's join and her three messages
  REQUIRE(u["convs"].size() == 1);
  CHECK(u["convs"][0]["conv"] == "r:news");
  auto h = bob->request({{"t", "history"}, {"conv", "r:news"}, {"after", 1}});
  CHECK(h["msgs"].size() == 4);
  bob->send({{"t", "read"}, {"conv", "r:news"}, {"seq", 5}});
  CHECK(bob->request({{"t", "unread"}})["total"] == 0);
}

TEST_CASE("a group crossing the threshold both ways, with sends in flight, loses and repeats nothing") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--large-group=3"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  auto dave = engine.login("dave", "phone");
  REQUIRE(alice->request(json{{"t", "group_create"}, {"conv", "g:big"}, {"members", {"bob", "carol"}}})["t"] == "ok");
  // Everything below is pipelined: the switches happen between sends.
  int req = 100;
  auto send = [&](json f) { f["req"] = ++req; alice->send(f); };
  for (int i = 0; i < 10; ++i)
    send(send_frame("g:big", "x" + std::to_string(i), "inbox-1"));
  send(json{{"t", "group_add"}, {"conv", "g:big"}, {"members", {"dave"}}});   // 4 > 3: timeline
  for (int i = 0; i < 10; ++i)
    send(send_frame("g:big", "y" + std::to_string(i), "timeline"));
  send(json{{"t", "group_remove"}, {"conv", "g:big"}, {"members", {"dave"}}});   // back to inbox
  for (int i = 0; i < 10; ++i)
    send(send_frame("g:big", "z" + std::to_string(i), "inbox-2"));
  for (int r = 101; r <= req; ++r) {
    auto reply = alice->wait_for([r](const json& f) { return f.value("req", 0) == r; }, 10000ms);
    REQUIRE((reply["t"] == "ack" || reply["t"] == "ok"));
  }
  const uint64_t last = 33;   // create, 10, add, 10, remove, 10
  // bob: every seq exactly once, inbox copies (with iseq) and timeline
  // pushes (without) together
  std::map<uint64_t, bool> got;   // seq -> had iseq
  uint64_t last_iseq = 0;
  while (got.size() < last) {
    auto m = bob->wait_for([](const json& f) { return f.value("t", "") == "msg" && f["conv"] == "g:big"; }, 10000ms);
    auto seq = m["seq"].get<uint64_t>();
    CHECK(got.count(seq) == 0);
    got[seq] = m.contains("iseq");
    if (m.contains("iseq")) {
      CHECK(m["iseq"].get<uint64_t>() == last_iseq + 1);
      last_iseq = m["iseq"].get<uint64_t>();
      bob->send({{"t", "ack"}, {"iseq", last_iseq}});
    }
  }
  CHECK(got.rbegin()->first == last);
  for (auto& [seq, inbox] : got)
    CHECK(inbox == (seq <= 11 || seq >= 23));   // the add and what follows it: timeline
  auto sync = bob->request({{"t", "sync"}, {"after", 0}, {"limit", 100}});
  CHECK(sync["msgs"].size() == 22);
  // dave: pushes from his add (12) through his removal (23) and nothing else
  std::set<uint64_t> dave_seqs;
  for (uint64_t seq = 12; seq <= 23; ++seq)
    dave_seqs.insert(dave->wait_for(is_msg("g:big", seq), 10000ms)["seq"].get<uint64_t>());
  CHECK(dave_seqs.size() == 12);
  CHECK_THROWS(dave->wait_for(is_msg("g:big", 24), 300ms));
  auto info = alice->request({{"t", "group_info"}, {"conv", "g:big"}});
  CHECK(info["mode"] == "inbox");
  CHECK(info["last_seq"] == last);
}

TEST_CASE("a reader that falls behind gets notify instead of normal room pushes; prio 1 still arrives") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--slow-queue=64"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(alice->request(conv_frame("join", "r:flood"))["t"] == "ok");
  REQUIRE(bob->request(conv_frame("join", "r:flood"))["t"] == "ok");
  bob->pause();
  const std::string body(4096, 'x');
  const int n = 2000;   // 8 MB: more than the kernel buffers hold
  for (int i = 0; i < n; i += 10) {   // 10 x 4 KB per frame, under --max-frame
    json batch{{"t", "send_batch"}, {"conv", "r:flood"}, {"msgs", json::array()}};
    for (int j = i; j < i + 10; ++j)
      batch["msgs"].push_back({{"cmid", "f" + std::to_string(j)}, {"body", body}});
    REQUIRE(alice->request(batch, 10000ms)["t"] == "ack_batch");
  }
  auto urgent = send_frame("r:flood", "urgent", "read me");
  urgent["prio"] = 1;
  auto ack = alice->request(urgent);
  REQUIRE(ack["t"] == "ack");
  bob->resume();
  auto urgent_seq = ack["seq"].get<uint64_t>();
  auto got = bob->wait_for(is_msg("r:flood", urgent_seq), 20000ms);
  CHECK(got["prio"] == 1);
  auto notify = bob->wait_for(is_type("notify"), 20000ms);
  CHECK(notify["conv"] == "r:flood");
  CHECK(notify["seq"].get<uint64_t>() < urgent_seq);
  // nothing left the timeline
  auto h = bob->request({{"t", "history"}, {"conv", "r:flood"}, {"before", urgent_seq + 1}, {"limit", 1000}});
  CHECK(h["msgs"].size() == 1000);
  CHECK(h["more"] == true);
}

TEST_CASE("one timeline push reaches JSON and msgpack members each in their own encoding") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto text = engine.login("alice", "phone");
  auto binary = engine.login("bob", "phone", true);
  REQUIRE(text->request(conv_frame("join", "r:mixed"))["t"] == "ok");
  REQUIRE(binary->request_msgpack(conv_frame("join", "r:mixed"))["t"] == "ok");
  auto ack = text->request(send_frame("r:mixed", "m1", "both"));
  auto seq = ack["seq"].get<uint64_t>();
  auto a = text->wait_for(is_msg("r:mixed", seq));
  CHECK_FALSE(text->last_was_binary());
  auto b = binary->wait_for(is_msg("r:mixed", seq));
  CHECK(binary->last_was_binary());
  CHECK(a == b);   // the same frame, two encodings
}

TEST_CASE("a room reader whose queue stays over the hard limit is closed; the room goes on") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(alice->request(conv_frame("join", "r:firehose"))["t"] == "ok");
  REQUIRE(bob->request(conv_frame("join", "r:firehose"))["t"] == "ok");
  REQUIRE(wait_metric(engine.port(), "imengine_connections_open 2\n"));
  bob->freeze();
  // prio 1 is never held back: enough of it overflows any queue
  const std::string body(1000, 'p');
  uint64_t longest_seen = 0;   // bob's write queue, as /metrics shows it
  for (int i = 0; i < 400 && !wait_metric(engine.port(), "imengine_connections_open 1\n", 0ms); ++i) {
    json batch{{"t", "send_batch"}, {"conv", "r:firehose"}, {"msgs", json::array()}};
    for (int j = 0; j < 50; ++j)
      batch["msgs"].push_back({{"cmid", std::to_string(i) + "-" + std::to_string(j)}, {"body", body}, {"prio", 1}});
    REQUIRE(alice->request(batch, 10000ms)["t"] == "ack_batch");
    longest_seen = std::max(longest_seen, metric(engine.port(), "imengine_ws_queue_longest").value_or(0));
  }
  CHECK(wait_metric(engine.port(), "imengine_connections_open 1\n", 10000ms));   // bob is gone
  CHECK(longest_seen > 256);   // frames piled up behind the frozen reader
  // His queue went with him; alice's is empty once her answers are written.
  CHECK(wait_metric(engine.port(), "imengine_ws_queued_frames 0\n", 10000ms));
  CHECK(alice->request({{"t", "ping"}})["t"] == "pong");
  auto h = alice->request({{"t", "history"}, {"conv", "r:firehose"}, {"before", UINT64_MAX >> 1}, {"limit", 1}});
  CHECK(h["msgs"][0]["prio"] == 1);
}
