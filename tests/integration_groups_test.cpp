// Groups with write diffusion: owner-managed membership announced by
// system messages, the same order in every member's inbox, and nothing
// for non-members.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

auto is_msg_in(const std::string& conv) {
  return [conv](const json& f) { return f.value("t", "") == "msg" && f.value("conv", "") == conv; };
}

json members_frame(const std::string& t, const std::string& conv, std::vector<std::string> users) {
  return json{{"t", t}, {"conv", conv}, {"members", users}};
}

} // namespace

TEST_CASE("group_create announces itself to every member; group_info tells the state") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  auto ok = alice->request(members_frame("group_create", "g:team", {"bob", "carol", "bob"}));
  REQUIRE(ok["t"] == "ok");
  for (auto* c : {alice.get(), bob.get(), carol.get()}) {
    auto m = c->wait_for(is_msg_in("g:team"));
    CHECK(m["seq"] == 1);
    CHECK(m["type"] == "system");
    CHECK(m["from"] == "alice");
    auto body = json::parse(m["body"].get<std::string>());
    CHECK(body["op"] == "create");
    CHECK(body["members"] == json{"alice", "bob", "carol"});
  }
  auto info = bob->request({{"t", "group_info"}, {"conv", "g:team"}});
  CHECK(info["t"] == "group_info_result");
  CHECK(info["members"] == json{"alice", "bob", "carol"});
  CHECK(info["owner"] == "alice");
  CHECK(info["mode"] == "inbox");
  CHECK(info["last_seq"] == 1);
  CHECK(bob->request(members_frame("group_create", "g:team", {"eve"}))["code"] == "forbidden");
  auto eve = engine.login("eve", "x");
  CHECK(eve->request({{"t", "group_info"}, {"conv", "g:team"}})["code"] == "forbidden");
  CHECK(eve->request({{"t", "group_info"}, {"conv", "g:nope"}})["code"] == "not_found");
  CHECK(eve->request(send_frame("g:team", "e1", "let me in"))["code"] == "forbidden");
  CHECK(eve->request({{"t", "history"}, {"conv", "g:team"}})["code"] == "forbidden");
}

TEST_CASE("a send pipelined behind group_create is judged after it") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  alice->send(json{{"t", "group_create"}, {"req", 1}, {"conv", "g:fast"}, {"members", {"bob"}}});
  auto s = send_frame("g:fast", "f1", "first!");
  s["req"] = 2;
  alice->send(s);
  CHECK(alice->wait_for([](const json& f) { return f.value("req", 0) == 1; })["t"] == "ok");
  auto ack = alice->wait_for([](const json& f) { return f.value("req", 0) == 2; });
  CHECK(ack["t"] == "ack");
  CHECK(ack["seq"] == 2);
}

TEST_CASE("every member sees the same order; each sender's pipelined messages keep theirs") {
  temp_dir dir;
  engine_process engine(dir.str());
  std::vector<std::string> names{"m0", "m1", "m2", "m3", "m4"};
  std::map<std::string, std::unique_ptr<imengine::net::ws_client>> c;
  for (auto& n : names)
    c[n] = engine.login(n, "d");
  REQUIRE(c["m0"]->request(members_frame("group_create", "g:order", names))["t"] == "ok");
  constexpr int per_sender = 60;
  for (int i = 0; i < per_sender; ++i)
    for (auto& n : {"m1", "m2", "m3"})
      c[n]->send(send_frame("g:order", std::string(n) + "-" + std::to_string(i), std::string(n) + ":" + std::to_string(i)));
  const size_t total = 1 + 3 * per_sender;
  std::vector<std::vector<std::string>> seen;
  for (auto& n : names) {
    std::vector<std::string> bodies;
    uint64_t last_iseq = 0, last_seq = 0;
    while (bodies.size() < total) {
      auto m = c[n]->wait_for(is_msg_in("g:order"), 10000ms);
      CHECK(m["iseq"].get<uint64_t>() > last_iseq);
      CHECK(m["seq"].get<uint64_t>() == last_seq + 1);   // gapless, in order
      last_iseq = m["iseq"].get<uint64_t>();
      last_seq = m["seq"].get<uint64_t>();
      bodies.push_back(m["body"].get<std::string>());
      c[n]->send({{"t", "ack"}, {"iseq", last_iseq}});
    }
    seen.push_back(bodies);
  }
  for (size_t i = 1; i < seen.size(); ++i)
    CHECK(seen[i] == seen[0]);   // one order for everybody
  for (auto& n : {"m1", "m2", "m3"}) {   // and each sender's own order
    int expect = 0;
    for (auto& b : seen[0])
      if (b.rfind(std::string(n) + ":", 0) == 0)
        CHECK(b == std::string(n) + ":" + std::to_string(expect++));
    CHECK(expect == per_sender);
  }
}

TEST_CASE("only the owner adds and removes; joiners start at their join, leavers stop") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(alice->request(members_frame("group_create", "g:team", {"bob"}))["t"] == "ok");
  REQUIRE(alice->request(send_frame("g:team", "a1", "before dave"))["seq"] == 2);
  CHECK(bob->request(members_frame("group_add", "g:team", {"dave"}))["code"] == "forbidden");
  CHECK(bob->request(members_frame("group_remove", "g:team", {"alice"}))["code"] == "forbidden");
  CHECK(alice->request(members_frame("group_remove", "g:team", {"alice"}))["code"] == "bad_frame");
  REQUIRE(alice->request(members_frame("group_add", "g:team", {"dave"}))["t"] == "ok");
  REQUIRE(bob->request(send_frame("g:team", "b1", "hi dave"))["seq"] == 4);
  auto dave = engine.login("dave", "phone");
  auto inbox = inbox_of_at_least(*dave, 2);
  REQUIRE(inbox.size() == 2);   // from the add on: nothing older
  CHECK(inbox[0]["seq"] == 3);
  CHECK(json::parse(inbox[0]["body"].get<std::string>())["op"] == "add");
  CHECK(inbox[1]["body"] == "hi dave");
  auto u = dave->request({{"t", "unread"}});
  CHECK(u["total"] == 2);   // the add and bob's message, not the history before
  // removing bob: he gets the announcement, then nothing
  REQUIRE(alice->request(members_frame("group_remove", "g:team", {"bob"}))["t"] == "ok");
  auto removal = bob->wait_for([](const json& f) {
    return f.value("t", "") == "msg" && f.value("type", "") == "system" && f.value("seq", 0) == 5;
  });
  CHECK(json::parse(removal["body"].get<std::string>())["op"] == "remove");
  CHECK(bob->request(send_frame("g:team", "b2", "still here?"))["code"] == "forbidden");
  CHECK(bob->request({{"t", "history"}, {"conv", "g:team"}})["code"] == "forbidden");
  REQUIRE(alice->request(send_frame("g:team", "a2", "bob is gone"))["seq"] == 6);
  dave->wait_for([](const json& f) { return f.value("t", "") == "msg" && f.value("seq", 0) == 6; });
  auto bob_unread = bob->request({{"t", "unread"}});
  CHECK(bob_unread["total"] == 0);   // nothing after his removal counts
  auto bob_inbox = whole_inbox(*bob);
  CHECK(bob_inbox.back()["seq"] == 5);   // the removal was his last copy
  auto info = alice->request({{"t", "group_info"}, {"conv", "g:team"}});
  CHECK(info["members"] == json{"alice", "dave"});
}

TEST_CASE("SIGKILL mid group fan-out: every member's inbox ends complete, without duplicates") {
  temp_dir dir;
  std::vector<std::string> members;
  for (int i = 0; i < 40; ++i)
    members.push_back("u" + std::to_string(i));
  std::set<std::string> acked;
  {
    engine_process engine(dir.str());
    auto owner = engine.login("u0", "d");
    REQUIRE(owner->request(members_frame("group_create", "g:big", members))["t"] == "ok");
    std::atomic<size_t> n_acked{0};
    std::mutex mtx;
    std::thread sender([&] {
      int next = 0, in_flight = 0;
      while (true) {
        while (in_flight < 32 && next < 5000) {
          owner->send(send_frame("g:big", "c" + std::to_string(next), "m" + std::to_string(next)));
          ++next;
          ++in_flight;
        }
        auto f = owner->next(5000ms);
        if (!f)
          break;   // killed, drained
        if ((*f)["t"] == "ack") {
          --in_flight;
          std::lock_guard<std::mutex> g(mtx);
          acked.insert((*f)["cmid"].get<std::string>());
          n_acked++;
        }
      }
    });
    auto until = std::chrono::steady_clock::now() + 30s;
    while (n_acked < 300 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);   // poll interval
    engine.kill9();   // 40 inbox copies per message: fan-outs are in flight
    sender.join();
  }
  REQUIRE(acked.size() >= 300);
  engine_process engine(dir.str());
  auto owner = engine.login("u0", "d2");
  auto last = owner->request({{"t", "group_info"}, {"conv", "g:big"}})["last_seq"].get<uint64_t>();
  CHECK(last >= acked.size() + 1);
  for (auto& m : members) {
    auto c = engine.login(m, "check");
    auto inbox = inbox_of_at_least(*c, last, 20s);
    INFO("member " << m);
    REQUIRE(inbox.size() == last);   // complete, and no duplicate ...
    for (size_t i = 0; i < inbox.size(); ++i)
      CHECK(inbox[i]["seq"] == i + 1);   // ... each seq once, in order
  }
}
