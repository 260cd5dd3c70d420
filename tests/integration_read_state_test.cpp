// Read positions, exact unread counts, read sync across devices, dm
// receipts, typing and presence, over real WebSockets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

json unread(imengine::net::ws_client& c) {
  auto r = c.request({{"t", "unread"}});
  REQUIRE(r["t"] == "unread_result");
  return r;
}

} // namespace

TEST_CASE("unread is last_seq - read_seq, exact; reads only move forward") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  CHECK(unread(*bob)["total"] == 0);
  for (int i = 1; i <= 3; ++i)
    REQUIRE(alice->request(send_frame("dm:alice:bob", "u" + std::to_string(i), "m"))["t"] == "ack");
  REQUIRE(alice->request(send_frame("dm:alice:carol", "c1", "m"))["t"] == "ack");
  auto u = unread(*bob);
  CHECK(u["total"] == 3);
  REQUIRE(u["convs"].size() == 1);
  CHECK(u["convs"][0] == json{{"conv", "dm:alice:bob"}, {"unread", 3}, {"last_seq", 3}, {"read_seq", 0}});
  // sending moved alice's read position to her own messages
  CHECK(unread(*alice)["total"] == 0);
  bob->send({{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 2}});
  CHECK(unread(*bob)["total"] == 1);   // the read takes effect before the next frame
  bob->send({{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 1}});
  CHECK(unread(*bob)["convs"][0]["read_seq"] == 2);   // never back
  bob->send({{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 999}});
  CHECK(unread(*bob)["total"] == 0);   // clamped to the last seq
  // bob replies: alice has 1 unread, bob none (his own message)
  REQUIRE(bob->request(send_frame("dm:alice:bob", "b1", "re"))["seq"] == 4);
  CHECK(unread(*alice)["total"] == 1);
  CHECK(unread(*bob)["total"] == 0);
  // read positions survive a restart
  CHECK(engine.terminate() == 0);
  engine_process again(dir.str());
  auto bob2 = again.login("bob", "phone");
  auto carol = again.login("carol", "phone");
  CHECK(unread(*bob2)["total"] == 0);
  CHECK(unread(*carol)["total"] == 1);
  auto alice2 = again.login("alice", "phone");
  CHECK(unread(*alice2)["convs"][0]["read_seq"] == 3);
}

TEST_CASE("a read reaches the user's other devices and the dm peer as a receipt") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob_phone = engine.login("bob", "phone");
  auto bob_web = engine.login("bob", "web");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "r1", "hi"))["seq"] == 1);
  bob_phone->send({{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 1}});
  auto r = bob_web->wait_for(is_type("read"));
  CHECK(r == json{{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 1}});
  auto receipt = alice->wait_for(is_type("receipt"));
  CHECK(receipt == json{{"t", "receipt"}, {"conv", "dm:alice:bob"}, {"user", "bob"}, {"seq", 1}});
  // the reading device itself gets no read event: its next frame is the pong
  auto next = bob_phone->request({{"t", "ping"}});
  CHECK(next["t"] == "pong");
  CHECK_THROWS(bob_phone->wait_for(is_type("read"), 200ms));
  // outsiders may not read
  auto eve = engine.login("eve", "x");
  eve->send({{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 1}});
  CHECK(eve->wait_for(is_type("error"))["code"] == "forbidden");
}

TEST_CASE("typing is relayed to the other member at once, never stored") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  alice->send({{"t", "typing"}, {"conv", "dm:alice:bob"}});   // no message yet
  auto t = bob->wait_for(is_type("typing"));
  CHECK(t == json{{"t", "typing"}, {"conv", "dm:alice:bob"}, {"user", "alice"}});
  auto h = bob->request({{"t", "history"}, {"conv", "dm:alice:bob"}});
  CHECK(h["msgs"].empty());
  CHECK(unread(*bob)["total"] == 0);
  auto eve = engine.login("eve", "x");
  eve->send({{"t", "typing"}, {"conv", "dm:alice:bob"}});
  CHECK(eve->wait_for(is_type("error"))["code"] == "forbidden");
}

TEST_CASE("presence: the current state at once, then online/offline changes") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto carol = engine.login("carol", "phone");
  // Presence is for users sharing a conversation: a dm makes bob one.
  REQUIRE(carol->request(send_frame("dm:bob:carol", "c1", "hi"))["seq"] == 1);
  carol->send({{"t", "presence_sub"}, {"users", {"bob"}}});
  CHECK(carol->wait_for(is_type("presence")) == json{{"t", "presence"}, {"user", "bob"}, {"online", false}});
  auto bob_phone = engine.login("bob", "phone");
  CHECK(carol->wait_for(is_type("presence"))["online"] == true);
  auto bob_web = engine.login("bob", "web");
  bob_phone->close();   // one device left: still online
  REQUIRE(wait_metric(engine.port(), "imengine_connections_open 2\n"));
  carol->send({{"t", "presence_sub"}, {"users", {"bob"}}});
  CHECK(carol->wait_for(is_type("presence"))["online"] == true);   // no offline in between
  bob_web->close();
  CHECK(carol->wait_for(is_type("presence")) == json{{"t", "presence"}, {"user", "bob"}, {"online", false}});
}

TEST_CASE("presence: strangers are offline to a subscriber, and stay unwatched") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--max-watch=3"});
  auto eve = engine.login("eve", "phone");
  auto bob = engine.login("bob", "phone");
  auto dan = engine.login("dan", "phone");
  REQUIRE(dan->request(send_frame("dm:bob:dan", "d1", "hi"))["seq"] == 1);
  // bob is online but shares nothing with eve: she learns "offline", and
  // no change later; a group with her makes dan a contact.
  eve->send({{"t", "presence_sub"}, {"users", {"bob"}}});
  CHECK(eve->wait_for(is_type("presence")) == json{{"t", "presence"}, {"user", "bob"}, {"online", false}});
  REQUIRE(eve->request({{"t", "group_create"}, {"conv", "g:pals"}, {"members", {"dan"}}})["t"] == "ok");
  eve->send({{"t", "presence_sub"}, {"users", {"dan"}}});
  CHECK(eve->wait_for(is_type("presence")) == json{{"t", "presence"}, {"user", "dan"}, {"online", true}});
  bob->close();
  dan->close();
  // the next presence frame is dan's offline: none came for bob
  CHECK(eve->wait_for(is_type("presence")) == json{{"t", "presence"}, {"user", "dan"}, {"online", false}});
  // --max-watch=3: one watched (dan), three more are too many
  auto over = eve->request({{"t", "presence_sub"}, {"users", {"x1", "x2", "x3"}}});
  CHECK(over["code"] == "rate_limited");
  // a frame over the documented cap is malformed
  json many = json::array();
  for (int i = 0; i < 1001; ++i)
    many.push_back("u" + std::to_string(i));
  CHECK(eve->request({{"t", "presence_sub"}, {"users", many}})["code"] == "bad_frame");
}
