// Supervision: a crashed user or conversation actor (killed through
// --fault-injection) comes back with its state from LMDB; clients see no
// loss, gap or duplicate beyond what they dedupe by (conv, seq) anyway.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <set>
#include <thread>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

json crash(const std::string& kind, const std::string& id) {
  return json{{"t", "_crash"}, {"kind", kind}, {"id", id}};
}

} // namespace

TEST_CASE("_crash is refused unless fault injection is on") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  CHECK(alice->request(crash("user", "bob"))["code"] == "unknown_type");
}

TEST_CASE("a crashed inbox comes back: pushes continue gapless, nothing twice") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--fault-injection"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  uint64_t next_iseq = 1;
  auto expect_push = [&](const std::string& body) {
    auto m = bob->wait_for(is_push(next_iseq), 10000ms);
    CHECK(m["body"] == body);
    bob->send({{"t", "ack"}, {"iseq", next_iseq++}});
  };
  REQUIRE(alice->request(send_frame("dm:alice:bob", "a1", "before"))["seq"] == 1);
  expect_push("before");
  // alice watches bob (a contact now: they share the dm)
  alice->send({{"t", "presence_sub"}, {"users", {"bob"}}});
  CHECK(alice->wait_for(is_type("presence"))["online"] == true);
  REQUIRE(alice->request(crash("user", "bob"))["t"] == "ok");
  for (int i = 2; i <= 6; ++i)
    REQUIRE(alice->request(send_frame("dm:alice:bob", "a" + std::to_string(i), "after " + std::to_string(i)))["t"] == "ack");
  for (int i = 2; i <= 6; ++i)
    expect_push("after " + std::to_string(i));
  auto inbox = whole_inbox(*bob);
  REQUIRE(inbox.size() == 6);
  for (size_t i = 0; i < inbox.size(); ++i) {
    CHECK(inbox[i]["iseq"] == i + 1);
    CHECK(inbox[i]["seq"] == i + 1);
  }
  // unread and presence work with the new actor
  CHECK(bob->request({{"t", "unread"}})["total"] == 6);
  bob->close();
  // (alice may see "online" again first: her subscription moved to the new actor)
  auto offline = alice->wait_for([](const json& f) {
    return f.value("t", "") == "presence" && f["online"] == false;
  }, 10000ms);
  CHECK(offline["user"] == "bob");
}

TEST_CASE("a conversation crashing mid-stream: resends complete it, gapless, each message once") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--fault-injection"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  const int n = 200;
  std::map<int, json> replies;   // req -> reply
  for (int i = 0; i < n; ++i) {
    auto f = send_frame("dm:alice:bob", "c" + std::to_string(i), "m" + std::to_string(i));
    f["req"] = i + 1;
    alice->send(f);
    if (i == n / 2)
      alice->send(crash("conv", "dm:alice:bob"));
  }
  while (replies.size() < static_cast<size_t>(n)) {
    auto r = alice->wait_for([](const json& f) { return f.contains("req") && f["req"].get<int>() <= n; }, 10000ms);
    replies[r["req"].get<int>()] = r;
  }
  // Whatever failed (unavailable while the actor was gone) is resent with
  // its cmid, as a client does without an ack.
  for (auto& [req, r] : replies) {
    if (r["t"] == "ack")
      continue;
    CHECK(r["code"] == "unavailable");
    auto again = alice->request(send_frame("dm:alice:bob", "c" + std::to_string(req - 1), "m" + std::to_string(req - 1)));
    REQUIRE(again["t"] == "ack");
  }
  auto h = bob->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"after", 0}, {"limit", 1000}});
  REQUIRE(h["msgs"].size() == n);
  std::set<std::string> bodies;
  for (size_t i = 0; i < h["msgs"].size(); ++i) {
    CHECK(h["msgs"][i]["seq"] == i + 1);
    CHECK(bodies.insert(h["msgs"][i]["body"].get<std::string>()).second);
  }
  // bob's inbox gets every message once, also those whose fan-out the
  // crash interrupted
  auto inbox = inbox_of_at_least(*bob, static_cast<size_t>(n));
  REQUIRE(inbox.size() == static_cast<size_t>(n));
  for (size_t i = 0; i < inbox.size(); ++i)
    CHECK(inbox[i]["seq"] == i + 1);
}

TEST_CASE("a crashed connection actor closes its socket with 1011; other sessions keep working") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--fault-injection"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  alice->send(json{{"t", "_crash"}, {"kind", "conn"}});
  CHECK_MESSAGE(alice->wait_closed(5000ms), "socket still open after its connection actor died");
  CHECK(alice->close_code().value_or(0) == 1011);
  // The same engine serves bob and a new session of alice as before.
  auto laptop = engine.login("alice", "laptop");
  REQUIRE(bob->request(send_frame("dm:alice:bob", "b1", "still here"))["t"] == "ack");
  CHECK(laptop->wait_for(is_push(1), 10000ms)["body"] == "still here");
}

TEST_CASE("idle user actors stop (--actor-idle-s) and come back from LMDB on next use") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--actor-idle-s=1"});
  {
    auto alice = engine.login("alice", "phone");
    for (int i = 1; i <= 3; ++i)
      REQUIRE(alice->request(send_frame("dm:alice:bob", "c" + std::to_string(i),
                                        "m" + std::to_string(i)))["seq"] == i);
    // 40 users come and go; so does alice
    for (int u = 0; u < 40; ++u)
      engine.login("visitor" + std::to_string(u), "d")->close();
    alice->close();
  }
  // every user actor stops once idle: alice's, bob's (inbox copies only),
  // the visitors'
  REQUIRE(wait_metric(engine.port(), "imengine_user_actors 0\n", 15000ms));
  CHECK(wait_metric(engine.port(), "imengine_idle_stops_total{actor=\"user\"} 42\n", 0ms));
  // bob's inbox is whole, and the next copies continue its iseq gaplessly
  auto bob = engine.login("bob", "phone");
  auto alice = engine.login("alice", "phone");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c4", "m4"))["seq"] == 4);
  auto inbox = inbox_of_at_least(*bob, 4);
  REQUIRE(inbox.size() == 4);
  for (size_t i = 0; i < inbox.size(); ++i) {
    CHECK(inbox[i]["iseq"] == i + 1);
    CHECK(inbox[i]["body"] == "m" + std::to_string(i + 1));
  }
  CHECK(bob->wait_for(is_push(4), 10000ms)["body"] == "m4");
  // an actor with a device online stays: carol's actor stops after a
  // quiet period of hers, bob's and alice's do not, and bob still gets
  // pushes on the same connection
  engine.login("carol", "d")->close();
  REQUIRE(wait_metric(engine.port(), "imengine_idle_stops_total{actor=\"user\"} 43\n", 15000ms));
  CHECK(wait_metric(engine.port(), "imengine_user_actors 2\n"));
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c5", "m5"))["seq"] == 5);
  CHECK(bob->wait_for(is_push(5), 10000ms)["body"] == "m5");
}

TEST_CASE("idle conversation actors stop and come back with seq, dedupe and members intact") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--actor-idle-s=1"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto first = alice->request(send_frame("dm:alice:bob", "c1", "m1"));
  REQUIRE(first["seq"] == 1);
  auto g = alice->request({{"t", "group_create"}, {"conv", "g:team"}, {"members", {"bob"}}});
  REQUIRE(g["t"] == "ok");
  REQUIRE(alice->request(send_frame("g:team", "g1", "hello team"))["t"] == "ack");
  auto body_is = [](std::string text) {
    return [text](const json& f) { return f.value("t", "") == "msg" && f.value("body", "") == text; };
  };
  REQUIRE(bob->wait_for(body_is("hello team"), 10000ms).contains("iseq"));
  // Both conversations stop although their members stay online.
  REQUIRE(wait_metric(engine.port(), "imengine_conversation_actors 0\n", 15000ms));
  CHECK(wait_metric(engine.port(), "imengine_idle_stops_total{actor=\"conversation\"} 2\n", 0ms));
  // A resend is still a duplicate of the first; the next seq follows on.
  auto again = alice->request(send_frame("dm:alice:bob", "c1", "m1"));
  CHECK(again["dup"] == true);
  CHECK(again["seq"] == 1);
  CHECK(again["mid"] == first["mid"]);
  CHECK(alice->request(send_frame("dm:alice:bob", "c2", "m2"))["seq"] == 2);
  CHECK(bob->wait_for(body_is("m2"), 10000ms)["seq"] == 2);
  // The group's members came back from LMDB: bob gets its next message,
  // a stranger is still refused.
  REQUIRE(wait_metric(engine.port(), "imengine_conversation_actors 0\n", 15000ms));
  CHECK(alice->request(send_frame("g:team", "g2", "again"))["seq"] == 3);
  CHECK(bob->wait_for(body_is("again"), 10000ms)["seq"] == 3);
  auto carol = engine.login("carol", "phone");
  CHECK(carol->request(send_frame("g:team", "x", "intruder"))["code"] == "forbidden");
}

TEST_CASE("users that came and went leave nothing behind once their actors stopped") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--actor-idle-s=1"});
  // What the node keeps per user or conversation it knows of.
  const std::vector<std::string> tables{
    "imengine_connections_open", "imengine_user_actors", "imengine_conversation_actors",
    "imengine_fanout_online_users", "imengine_directory_entries{table=\"users\"}",
    "imengine_directory_entries{table=\"conversations\"}",
    "imengine_directory_entries{table=\"remote_users\"}",
    "imengine_directory_entries{table=\"remote_conversations\"}",
    "imengine_directory_entries{table=\"restart_histories\"}"};
  auto sizes = [&] {
    auto text = http_get(engine.port(), "/metrics").second;
    std::map<std::string, std::optional<uint64_t>> out;
    for (const auto& t : tables)
      out[t] = metric(text, t);
    return out;
  };
  auto baseline = sizes();
  for (const auto& [table, n] : baseline)
    REQUIRE_MESSAGE(n.has_value(), table);
  // Polls until every table is back at the baseline, or the deadline.
  auto back_to_baseline = [&] {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (sizes() != baseline && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    return sizes();
  };
  // Two rounds of distinct users: each pair shares a dm (a conversation
  // actor, an inbox copy, an ack), each watches its peer's presence.
  for (int round = 0; round < 2; ++round) {
    {
      std::vector<std::unique_ptr<imengine::net::ws_client>> clients;
      for (int i = 0; i < 30; ++i) {
        auto a = "r" + std::to_string(round) + "a" + std::to_string(i);
        auto b = "r" + std::to_string(round) + "b" + std::to_string(i);
        clients.push_back(engine.login(a, "d"));
        clients.push_back(engine.login(b, "d"));
        auto& ca = *clients[clients.size() - 2];
        auto& cb = *clients.back();
        REQUIRE(ca.request(send_frame("dm:" + a + ":" + b, "c", "hi"))["seq"] == 1);
        auto push = cb.wait_for(is_push(1), 10000ms);
        cb.send({{"t", "ack"}, {"iseq", push["iseq"]}});
        ca.send({{"t", "presence_sub"}, {"users", {b}}});
        CHECK(ca.wait_for(is_type("presence"))["online"] == true);
      }
      CHECK(wait_metric(engine.port(), "imengine_fanout_online_users 60\n"));
    }   // all 60 leave
    auto after = back_to_baseline();
    for (const auto& [table, n] : baseline)
      CHECK_MESSAGE(after[table] == n, table);
  }
}
