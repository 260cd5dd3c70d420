// The conversation list (`convs`), mute and the newest history page, over
// real WebSockets to the real engine.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

std::vector<std::string> convs_of(const std::vector<json>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows)
    out.push_back(r["conv"]);
  return out;
}

// Most recent activity first (the last message's ts), equal ts by conv
// descending; each conversation once.
void check_order(const std::vector<json>& rows) {
  std::set<std::string> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(rows[i].dump());
    CHECK(seen.insert(rows[i]["conv"].get<std::string>()).second);
    CHECK(rows[i]["last"]["seq"] == rows[i]["last_seq"]);
    if (i == 0)
      continue;
    auto ts = rows[i]["last"]["ts"].get<int64_t>();
    auto prev = rows[i - 1]["last"]["ts"].get<int64_t>();
    CHECK(ts <= prev);
    if (ts == prev)
      CHECK(rows[i]["conv"].get<std::string>() < rows[i - 1]["conv"].get<std::string>());
  }
}

const json* row_of(const std::vector<json>& rows, const std::string& conv) {
  for (const auto& r : rows)
    if (r["conv"] == conv)
      return &r;
  return nullptr;
}

// The row of `conv`, which must be there.
json row(const std::vector<json>& rows, const std::string& conv) {
  auto r = row_of(rows, conv);
  REQUIRE_MESSAGE(r, conv << " is not in the list");
  return *r;
}

// The list agrees with `unread`: the same unread count for every row.
void check_against_unread(imengine::net::ws_client& c, const std::vector<json>& rows) {
  auto u = c.request({{"t", "unread"}});
  REQUIRE(u["t"] == "unread_result");
  std::map<std::string, uint64_t> unread;
  for (const auto& e : u["convs"])
    unread[e["conv"]] = e["unread"];
  for (const auto& r : rows) {
    CAPTURE(r.dump());
    auto i = unread.find(r["conv"]);
    CHECK(r["unread"] == (i == unread.end() ? 0 : i->second));
    CHECK(r["unread"] == r["last_seq"].get<uint64_t>() - r["read_seq"].get<uint64_t>());
  }
}

json ok_or_error(imengine::net::ws_client& c, json frame) {
  auto r = c.request(std::move(frame));
  REQUIRE((r["t"] == "ok" || r["t"] == "error"));
  return r;
}

} // namespace

TEST_CASE("convs lists every conversation of the user, most recent first, with its last message") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "a1", "hi"))["t"] == "ack");
  REQUIRE(bob->request(send_frame("dm:bob:carol", "b1", "yo"))["t"] == "ack");
  REQUIRE(ok_or_error(*alice, {{"t", "group_create"}, {"conv", "g:team"},
                               {"members", {"bob", "carol"}}})["t"] == "ok");
  REQUIRE(alice->request(send_frame("g:team", "a2", "team msg"))["t"] == "ack");
  REQUIRE(ok_or_error(*bob, {{"t", "join"}, {"conv", "r:lobby"}})["t"] == "ok");
  REQUIRE(ok_or_error(*carol, {{"t", "join"}, {"conv", "r:lobby"}})["t"] == "ok");
  REQUIRE(carol->request(send_frame("r:lobby", "c1", "room msg"))["t"] == "ack");
  // a dm without a message is no conversation yet; typing creates none
  bob->send({{"t", "typing"}, {"conv", "dm:bob:dave"}});

  auto rows = whole_convs(*bob);
  auto names = convs_of(rows);
  CHECK(std::set<std::string>(names.begin(), names.end())
        == std::set<std::string>{"dm:alice:bob", "dm:bob:carol", "g:team", "r:lobby"});
  REQUIRE(rows.size() == 4);
  check_order(rows);
  check_against_unread(*bob, rows);
  auto dm = row(rows, "dm:alice:bob");
  CHECK(dm["kind"] == "dm");
  CHECK(dm["last_seq"] == 1);
  CHECK(dm["read_seq"] == 0);
  CHECK(dm["unread"] == 1);
  CHECK(dm["mentions"] == 0);
  CHECK(dm["muted"] == false);
  CHECK(dm["last"]["from"] == "alice");
  CHECK(dm["last"]["body"] == "hi");
  CHECK(dm["last"]["type"] == "text");
  CHECK(dm["last"]["mid"].is_string());
  CHECK(row(rows, "dm:bob:carol")["unread"] == 0);   // bob's own message
  CHECK(row(rows, "g:team")["kind"] == "group");
  CHECK(row(rows, "g:team")["last"]["body"] == "team msg");
  CHECK(row(rows, "r:lobby")["kind"] == "room");
  CHECK(row(rows, "r:lobby")["last"]["body"] == "room msg");
  CHECK(row(rows, "r:lobby")["last"]["from"] == "carol");

  // new activity moves a conversation up, with its new last message
  REQUIRE(alice->request(send_frame("dm:alice:bob", "a3", "again"))["seq"] == 2);
  rows = whole_convs(*bob);
  check_order(rows);
  check_against_unread(*bob, rows);
  CHECK(row(rows, "dm:alice:bob")["last"]["body"] == "again");
  CHECK(row(rows, "dm:alice:bob")["unread"] == 2);
  CHECK(rows[0]["last"]["ts"] == row(rows, "dm:alice:bob")["last"]["ts"]);
  // a read moves read_seq in the list too
  bob->send({{"t", "read"}, {"conv", "dm:alice:bob"}, {"seq", 2}});
  CHECK(row(whole_convs(*bob), "dm:alice:bob")["unread"] == 0);

  // alice sees her side; a user with nothing has an empty list
  CHECK(convs_of(whole_convs(*alice)).size() == 2);
  auto eve = engine.login("eve", "x");
  auto empty = eve->request({{"t", "convs"}});
  CHECK(empty["convs"] == json::array());
  CHECK(empty["more"] == false);
  CHECK_FALSE(empty.contains("next"));

  // a removed member no longer lists the group; a room left is gone too
  REQUIRE(ok_or_error(*alice, {{"t", "group_remove"}, {"conv", "g:team"},
                               {"members", {"carol"}}})["t"] == "ok");
  REQUIRE(ok_or_error(*carol, {{"t", "leave"}, {"conv", "r:lobby"}})["t"] == "ok");
  CHECK(convs_of(whole_convs(*carol)) == std::vector<std::string>{"dm:bob:carol"});
  // the removal is activity for those who stay
  rows = whole_convs(*bob);
  check_order(rows);
  CHECK(row(rows, "g:team")["last"]["type"] == "system");

  // the list survives a restart exactly
  auto before = whole_convs(*bob);
  bob.reset();
  alice.reset();
  carol.reset();
  eve.reset();
  CHECK(engine.terminate() == 0);
  engine_process again(dir.str());
  auto bob2 = again.login("bob", "web");
  CHECK(whole_convs(*bob2) == before);
}

TEST_CASE("convs pages join to the whole list, in order, each conversation once") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto bob = engine.login("bob", "phone");
  for (int i = 0; i < 30; ++i) {
    char peer[8];
    std::snprintf(peer, sizeof(peer), "u%02d", i);
    REQUIRE(bob->request(send_frame(std::string("dm:bob:") + peer, peer, "m"))["t"] == "ack");
  }
  auto whole = whole_convs(*bob, 200);
  REQUIRE(whole.size() == 30);
  check_order(whole);
  CHECK(whole_convs(*bob, 7) == whole);
  CHECK(whole_convs(*bob, 1) == whole);
  auto first = bob->request({{"t", "convs"}, {"limit", 7}});
  CHECK(first["convs"].size() == 7);
  CHECK(first["more"] == true);
  // limit is clamped to 1..200
  auto one = bob->request({{"t", "convs"}, {"limit", 0}});
  CHECK(one["convs"].size() == 1);
  CHECK(bob->request({{"t", "convs"}, {"limit", 100000}})["convs"].size() == 30);

  SUBCASE("bad input gets bad_frame and the session goes on") {
    for (json bad : {json{{"t", "convs"}, {"cursor", "not base64!"}},
                     json{{"t", "convs"}, {"cursor", 17}},
                     json{{"t", "convs"}, {"cursor", "YWJj"}},            // "abc"
                     json{{"t", "convs"}, {"cursor", "MTI6eDp5"}},        // "12:x:y"
                     json{{"t", "convs"}, {"limit", "ten"}},
                     json{{"t", "convs"}, {"limit", -1}}}) {
      CAPTURE(bad.dump());
      auto r = bob->request(bad);
      CHECK(r["t"] == "error");
      CHECK(r["code"] == "bad_frame");
    }
    CHECK(bob->request({{"t", "convs"}, {"limit", 3}})["convs"].size() == 3);
  }
}

TEST_CASE("convs stays right across diffusion modes: timeline groups and switches both ways") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--large-group=3"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto dave = engine.login("dave", "phone");
  REQUIRE(ok_or_error(*alice, {{"t", "group_create"}, {"conv", "g:big"},
                               {"members", {"bob", "carol"}}})["t"] == "ok");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "d1", "dm"))["t"] == "ack");
  REQUIRE(alice->request(send_frame("g:big", "i1", "inbox mode"))["t"] == "ack");
  // a fourth member: the group switches to one shared timeline
  REQUIRE(ok_or_error(*alice, {{"t", "group_add"}, {"conv", "g:big"}, {"members", {"dave"}}})["t"]
          == "ok");
  REQUIRE(alice->request({{"t", "group_info"}, {"conv", "g:big"}})["mode"] == "timeline");
  REQUIRE(alice->request(send_frame("g:big", "t1", "timeline mode"))["t"] == "ack");
  for (auto* c : {bob.get(), dave.get()}) {
    auto rows = whole_convs(*c);
    check_order(rows);
    check_against_unread(*c, rows);
    REQUIRE(row_of(rows, "g:big"));
    CHECK(row(rows, "g:big")["last"]["body"] == "timeline mode");
    CHECK(row(rows, "g:big")["kind"] == "group");
  }
  CHECK(row(whole_convs(*bob), "g:big")["last_seq"] == 4);
  // dm activity after it comes first; the timeline group's new message
  // brings it back to the top
  REQUIRE(alice->request(send_frame("dm:alice:bob", "d2", "dm again"))["t"] == "ack");
  // (equal ts order by conv: compare the ts of the first row)
  auto rows = whole_convs(*bob);
  check_order(rows);
  CHECK(rows.front()["last"]["ts"] == row(rows, "dm:alice:bob")["last"]["ts"]);
  REQUIRE(alice->request(send_frame("g:big", "t2", "timeline again"))["t"] == "ack");
  rows = whole_convs(*bob);
  check_order(rows);
  CHECK(rows.front()["conv"] == "g:big");   // "g:" > "dm:" breaks a tie its way too
  CHECK(rows.front()["last"]["body"] == "timeline again");
  // back to inbox copies: removed members leave the list, the others keep it once
  REQUIRE(ok_or_error(*alice, {{"t", "group_remove"}, {"conv", "g:big"},
                               {"members", {"dave", "carol"}}})["t"] == "ok");
  REQUIRE(alice->request({{"t", "group_info"}, {"conv", "g:big"}})["mode"] == "inbox");
  REQUIRE(alice->request(send_frame("g:big", "i2", "inbox again"))["t"] == "ack");
  rows = whole_convs(*bob);
  check_order(rows);
  check_against_unread(*bob, rows);
  CHECK(row(rows, "g:big")["last"]["body"] == "inbox again");
  CHECK(rows.size() == 2);
  CHECK(row_of(whole_convs(*dave), "g:big") == nullptr);
  auto carol = engine.login("carol", "phone");
  CHECK(whole_convs(*carol).empty());
}

TEST_CASE("mute is kept per user, shown in convs, pushed to the user's other devices") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob_phone = engine.login("bob", "phone");
  auto bob_web = engine.login("bob", "web");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "m1", "hi"))["t"] == "ack");
  auto r = ok_or_error(*bob_phone, {{"t", "mute"}, {"conv", "dm:alice:bob"}, {"on", true}});
  CHECK(r["t"] == "ok");
  CHECK(bob_web->wait_for(is_type("mute")) == json{{"t", "mute"}, {"conv", "dm:alice:bob"}, {"on", true}});
  CHECK(bob_phone->request({{"t", "ping"}})["t"] == "pong");
  CHECK_THROWS(bob_phone->wait_for(is_type("mute"), 200ms));   // not to the device that muted
  CHECK(row(whole_convs(*bob_phone), "dm:alice:bob")["muted"] == true);
  CHECK(row(whole_convs(*alice), "dm:alice:bob")["muted"] == false);
  // the flag survives new messages and a restart
  REQUIRE(alice->request(send_frame("dm:alice:bob", "m2", "more"))["t"] == "ack");
  alice.reset();
  bob_phone.reset();
  bob_web.reset();
  CHECK(engine.terminate() == 0);
  engine_process again(dir.str());
  auto bob = again.login("bob", "phone");
  CHECK(row(whole_convs(*bob), "dm:alice:bob")["muted"] == true);
  CHECK(ok_or_error(*bob, {{"t", "mute"}, {"conv", "dm:alice:bob"}, {"on", false}})["t"] == "ok");
  CHECK(row(whole_convs(*bob), "dm:alice:bob")["muted"] == false);

  SUBCASE("only members, only booleans") {
    auto eve = again.login("eve", "x");
    CHECK(ok_or_error(*eve, {{"t", "mute"}, {"conv", "dm:alice:bob"}, {"on", true}})["code"]
          == "forbidden");
    CHECK(ok_or_error(*eve, {{"t", "mute"}, {"conv", "g:nosuch"}, {"on", true}})["code"]
          == "not_found");
    CHECK(ok_or_error(*eve, {{"t", "mute"}, {"conv", "r:lobby"}, {"on", true}})["code"]
          == "forbidden");
    for (json bad : {json{{"t", "mute"}, {"conv", "dm:alice:bob"}, {"on", "yes"}},
                     json{{"t", "mute"}, {"conv", "dm:alice:bob"}},
                     json{{"t", "mute"}, {"on", true}},
                     json{{"t", "mute"}, {"conv", "nope"}, {"on", true}}}) {
      CAPTURE(bad.dump());
      CHECK(ok_or_error(*bob, bad)["code"] == "bad_frame");
    }
    CHECK(row(whole_convs(*bob), "dm:alice:bob")["muted"] == false);
  }
}

TEST_CASE("history without after or before is the newest page, descending") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  for (int i = 1; i <= 5; ++i)
    REQUIRE(alice->request(send_frame("dm:alice:bob", "h" + std::to_string(i), "m"))["seq"] == i);
  auto seqs = [](const json& page) {
    std::vector<uint64_t> out;
    for (const auto& m : page["msgs"])
      out.push_back(m["seq"]);
    return out;
  };
  auto page = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"limit", 2}});
  CHECK(seqs(page) == std::vector<uint64_t>{5, 4});
  CHECK(page["more"] == true);
  page = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}});
  CHECK(seqs(page) == std::vector<uint64_t>{5, 4, 3, 2, 1});
  CHECK(page["more"] == false);
  // an explicit after=0 is still ascending from the start
  page = alice->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"after", 0}, {"limit", 2}});
  CHECK(seqs(page) == std::vector<uint64_t>{1, 2});
  auto empty = alice->request({{"t", "history"}, {"conv", "dm:alice:zed"}});
  CHECK(empty["msgs"] == json::array());
}
