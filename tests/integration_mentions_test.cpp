// Mentions over real WebSockets to the real engine: members only, @all for
// owners, the `mentions` count in convs, the `mention` frame of read
// diffusion.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

json mentioning(const std::string& conv, const std::string& cmid, json names) {
  auto f = send_frame(conv, cmid, "hey");
  f["mentions"] = std::move(names);
  return f;
}

json stored_mentions(const std::vector<json>& history, uint64_t seq) {
  for (const auto& m : history)
    if (m["seq"] == seq)
      return m.value("mentions", json::array());
  FAIL("no message " << seq);
  return {};
}

uint64_t mentions_in(imengine::net::ws_client& c, const std::string& conv) {
  for (const auto& r : whole_convs(c))
    if (r["conv"] == conv)
      return r["mentions"];
  FAIL(conv << " is not in the list");
  return 0;
}

} // namespace

TEST_CASE("mentions in a group: members only, stored and pushed, counted until read") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");   // the owner
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  REQUIRE(alice->request({{"t", "group_create"}, {"conv", "g:team"},
                          {"members", {"bob", "carol"}}})["t"] == "ok");
  auto sent = bob->request(mentioning("g:team", "b1", {"carol", "mallory", "bob", "carol"}));
  REQUIRE(sent["t"] == "ack");
  auto seq = sent["seq"].get<uint64_t>();
  auto pushed = carol->wait_for([&](const json& f) { return f["t"] == "msg" && f["seq"] == seq; });
  CHECK(pushed["mentions"] == json::array({"carol"}));   // members, not the sender, once
  CHECK(stored_mentions(whole_history(*alice, "g:team"), seq) == json::array({"carol"}));
  CHECK(mentions_in(*carol, "g:team") == 1);
  CHECK(mentions_in(*alice, "g:team") == 0);
  CHECK(mentions_in(*bob, "g:team") == 0);

  // @all: the owner only; it counts for every member but its sender
  auto refused = bob->request(mentioning("g:team", "b2", {"@all"}));
  CHECK(refused["t"] == "error");
  CHECK(refused["code"] == "forbidden");
  auto all = alice->request(mentioning("g:team", "a1", {"@all", "bob"}));
  REQUIRE(all["t"] == "ack");
  auto pushed_all = bob->wait_for([&](const json& f) {
    return f["t"] == "msg" && f["seq"] == all["seq"];
  });
  CHECK(pushed_all["mentions"] == json::array({"@all"}));
  CHECK(mentions_in(*carol, "g:team") == 2);
  CHECK(mentions_in(*bob, "g:team") == 1);
  CHECK(mentions_in(*alice, "g:team") == 0);

  // reading clears them; a recall of a mention uncounts it
  carol->send({{"t", "read"}, {"conv", "g:team"}, {"seq", all["seq"]}});
  auto until = std::chrono::steady_clock::now() + 5s;
  while (mentions_in(*carol, "g:team") != 0 && std::chrono::steady_clock::now() < until) {
  }
  CHECK(mentions_in(*carol, "g:team") == 0);
  REQUIRE(alice->request({{"t", "recall"}, {"conv", "g:team"}, {"seq", all["seq"]}})["t"] == "ok");
  CHECK(mentions_in(*bob, "g:team") == 0);

  // a dm mention of the peer counts too; plain messages carry no field
  auto dm = alice->request(mentioning("dm:alice:bob", "a2", {"bob"}));
  REQUIRE(dm["t"] == "ack");
  CHECK(mentions_in(*bob, "dm:alice:bob") == 1);
  REQUIRE(alice->request(send_frame("dm:alice:bob", "a3", "plain"))["t"] == "ack");
  auto plain = bob->wait_for([](const json& f) { return f["t"] == "msg" && f["body"] == "plain"; });
  CHECK_FALSE(plain.contains("mentions"));

  SUBCASE("bad mentions are bad_frame and change nothing") {
    for (json names : {json("bob"), json::array({1}), json::array({"b c"}),
                       json(std::vector<std::string>(51, "bob"))}) {
      CAPTURE(names.dump());
      auto r = alice->request(mentioning("g:team", "bad", names));
      CHECK(r["t"] == "error");
      CHECK(r["code"] == "bad_frame");
    }
    CHECK(mentions_in(*bob, "g:team") == 0);
  }
}

TEST_CASE("a mentioned member of a read-diffused group gets a mention frame, or the count offline") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--large-group=2"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(alice->request({{"t", "group_create"}, {"conv", "g:big"},
                          {"members", {"bob", "carol"}}})["t"] == "ok");
  REQUIRE(alice->request({{"t", "group_info"}, {"conv", "g:big"}})["mode"] == "timeline");
  auto sent = alice->request(mentioning("g:big", "a1", {"bob", "carol"}));
  REQUIRE(sent["t"] == "ack");
  auto seq = sent["seq"].get<uint64_t>();
  // online: the message itself (no iseq: no inbox copy) and a mention frame
  auto m = bob->wait_for([&](const json& f) { return f["t"] == "msg" && f["seq"] == seq; });
  CHECK_FALSE(m.contains("iseq"));
  CHECK(m["mentions"] == json::array({"bob", "carol"}));
  auto mention = bob->wait_for(is_type("mention"));
  CHECK(mention == json{{"t", "mention"}, {"conv", "g:big"}, {"seq", seq}, {"from", "alice"}});
  CHECK(mentions_in(*bob, "g:big") == 1);
  // carol was offline: she finds it in her list when she comes
  auto carol = engine.login("carol", "phone");
  CHECK(mentions_in(*carol, "g:big") == 1);
  CHECK(mentions_in(*alice, "g:big") == 0);
  // and it survives a restart
  alice.reset();
  bob.reset();
  carol.reset();
  REQUIRE(engine.terminate() == 0);
  engine_process again(dir.str(), {"--large-group=2"});
  auto carol2 = again.login("carol", "web");
  CHECK(mentions_in(*carol2, "g:big") == 1);
}
