// Recall and edit over real WebSockets to the real engine: each is the
// conversation's next message, applied to history, to every inbox copy and
// to the stored bytes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include <lmdb.h>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

json message_at(const std::vector<json>& msgs, uint64_t seq) {
  for (const auto& m : msgs)
    if (m["seq"] == seq)
      return m;
  FAIL("no message " << seq);
  return {};
}

// The inbox copy of (conv, seq).
json copy_at(const std::vector<json>& inbox, const std::string& conv, uint64_t seq) {
  for (const auto& m : inbox)
    if (m["conv"] == conv && m["seq"] == seq)
      return m;
  FAIL("no copy of " << conv << " " << seq);
  return {};
}

json recall(const std::string& conv, uint64_t seq) {
  return {{"t", "recall"}, {"conv", conv}, {"seq", seq}};
}

json edit(const std::string& conv, uint64_t seq, const std::string& body) {
  return {{"t", "edit"}, {"conv", conv}, {"seq", seq}, {"body", body}};
}

std::string error_code(const json& r) {
  return r["t"] == "error" ? r["code"].get<std::string>() : "<" + r["t"].get<std::string>() + ">";
}

// Whether `needle` is in a compacted copy of the LMDB environment: the
// live pages only (free pages may hold old bytes until LMDB reuses them).
bool in_live_pages(const std::string& data_dir, const std::string& needle) {
  temp_dir copy;
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  REQUIRE(mdb_env_set_maxdbs(env, 32) == 0);
  REQUIRE(mdb_env_set_mapsize(env, size_t{1} << 30) == 0);
  REQUIRE(mdb_env_open(env, data_dir.c_str(), MDB_RDONLY, 0644) == 0);
  REQUIRE(mdb_env_copy2(env, copy.str().c_str(), MDB_CP_COMPACT) == 0);
  mdb_env_close(env);
  std::ifstream in(copy.str() + "/data.mdb", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!bytes.empty());
  return bytes.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("edit then recall in a dm: ordered messages, history and every inbox copy amended") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  const std::string dm = "dm:alice:bob";
  REQUIRE(alice->request(send_frame(dm, "a1", "the secret-4711 plan"))["seq"] == 1);
  bob->wait_for(is_type("msg"));

  auto e = alice->request(edit(dm, 1, "the secret-4711 plan, fixed"));
  REQUIRE(e["t"] == "ok");
  CHECK(e["seq"] == 2);
  // delivered like any message, in order, with its own iseq
  auto pushed = bob->wait_for([](const json& f) { return f["t"] == "msg" && f["seq"] == 2; });
  CHECK(pushed["type"] == "edit");
  CHECK(pushed["ex"] == json{{"seq", 1}});
  CHECK(pushed["body"] == "the secret-4711 plan, fixed");
  CHECK(pushed["from"] == "alice");
  CHECK(pushed.contains("iseq"));

  auto history = whole_history(*bob, dm);
  auto original = message_at(history, 1);
  CHECK(original["body"] == "the secret-4711 plan, fixed");
  CHECK(original["edited"] == pushed["ts"]);
  CHECK_FALSE(original.contains("recalled"));
  // each inbox amends its copy when the edit's copy arrives (after the ok)
  for (auto* c : {alice.get(), bob.get()}) {
    auto copy = copy_at(inbox_of_at_least(*c, 2), dm, 1);
    CHECK(copy["body"] == "the secret-4711 plan, fixed");
    CHECK(copy["edited"] == pushed["ts"]);
  }

  auto r = alice->request(recall(dm, 1));
  REQUIRE(r["t"] == "ok");
  CHECK(r["seq"] == 3);
  auto recalled = bob->wait_for([](const json& f) { return f["t"] == "msg" && f["seq"] == 3; });
  CHECK(recalled["type"] == "recall");
  CHECK(recalled["ex"] == json{{"seq", 1}});
  CHECK(recalled["body"] == "");

  // the original and its edit come back recalled, bodies empty; the seqs stay
  history = whole_history(*bob, dm);
  REQUIRE(history.size() == 3);
  for (uint64_t seq : {1, 2}) {
    CAPTURE(seq);
    auto m = message_at(history, seq);
    CHECK(m["recalled"] == true);
    CHECK(m["body"] == "");
    CHECK_FALSE(m.contains("edited"));
  }
  for (auto* c : {alice.get(), bob.get()}) {
    auto inbox = inbox_of_at_least(*c, 3);
    for (uint64_t seq : {1, 2}) {
      auto copy = copy_at(inbox, dm, seq);
      CHECK(copy["recalled"] == true);
      CHECK(copy["body"] == "");
    }
  }
  // a recall retried is the same recall; an edit of a recalled message is refused
  auto again = alice->request(recall(dm, 1));
  CHECK(again["t"] == "ok");
  CHECK(again["seq"] == 3);
  CHECK(error_code(alice->request(edit(dm, 1, "back"))) == "forbidden");
  CHECK(whole_history(*bob, dm).size() == 3);

  // the convs row shows the recall as the last message
  auto rows = whole_convs(*bob);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["last"]["type"] == "recall");
  CHECK(rows[0]["last_seq"] == 3);

  // erased from storage: no live page holds the body or the edit's body
  alice.reset();
  bob.reset();
  REQUIRE(engine.terminate() == 0);
  CHECK_FALSE(in_live_pages(dir.str(), "secret-4711"));
  // and all of it survives a restart
  engine_process again_engine(dir.str());
  auto carol_view = again_engine.login("bob", "web");
  auto after = whole_history(*carol_view, dm);
  REQUIRE(after.size() == 3);
  CHECK(message_at(after, 1)["recalled"] == true);
}

TEST_CASE("who may recall or edit: the sender within the window, a group's owner recalls") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--recall-window=0"});
  auto alice = engine.login("alice", "phone");   // owner of g:team
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  REQUIRE(alice->request({{"t", "group_create"}, {"conv", "g:team"}, {"members", {"bob"}}})["t"]
          == "ok");
  REQUIRE(bob->request(send_frame("g:team", "b1", "from bob"))["seq"] == 2);
  REQUIRE(alice->request(send_frame("g:team", "a1", "from alice"))["seq"] == 3);

  // a window of 0 s: the sender's own edit is refused once a millisecond passed
  json refused;
  auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    refused = bob->request(edit("g:team", 2, "late"));
    if (refused["t"] == "error")
      break;
  }
  REQUIRE(refused["t"] == "error");
  CHECK(refused["code"] == "forbidden");
  CHECK(refused["msg"].get<std::string>().find("window") != std::string::npos);
  CHECK(error_code(bob->request(recall("g:team", 2))) == "forbidden");
  // another member's message: neither recalled nor edited by a member
  CHECK(error_code(bob->request(recall("g:team", 3))) == "forbidden");
  // the owner recalls bob's message any time, but edits only its own
  CHECK(error_code(alice->request(edit("g:team", 2, "owner edit"))) == "forbidden");
  auto r = alice->request(recall("g:team", 2));
  REQUIRE(r["t"] == "ok");
  auto seq = r["seq"].get<uint64_t>();
  auto history = whole_history(*bob, "g:team");
  CHECK(message_at(history, 2)["recalled"] == true);
  CHECK(message_at(history, seq)["from"] == "alice");
  // the group's notice is no message to recall
  CHECK(error_code(alice->request(recall("g:team", 1))) == "forbidden");

  SUBCASE("unknown seqs, foreign conversations and bad frames") {
    CHECK(error_code(alice->request(recall("g:team", 999))) == "not_found");
    CHECK(error_code(alice->request(edit("g:team", 999, "x"))) == "not_found");
    CHECK(error_code(carol->request(recall("g:team", 3))) == "forbidden");
    CHECK(error_code(carol->request(recall("dm:alice:bob", 1))) == "forbidden");
    CHECK(error_code(carol->request(recall("g:nothing", 1))) == "not_found");
    for (json bad : {json{{"t", "recall"}, {"conv", "g:team"}, {"seq", 0}},
                     json{{"t", "recall"}, {"conv", "g:team"}, {"seq", "3"}},
                     json{{"t", "recall"}, {"conv", "g:team"}, {"seq", -3}},
                     json{{"t", "recall"}, {"conv", "g:team"}},
                     json{{"t", "recall"}, {"conv", "team"}, {"seq", 3}},
                     json{{"t", "edit"}, {"conv", "g:team"}, {"seq", 3}},
                     json{{"t", "edit"}, {"conv", "g:team"}, {"seq", 3}, {"body", 5}},
                     json{{"t", "send"}, {"conv", "g:team"}, {"cmid", "f1"}, {"type", "recall"},
                          {"body", ""}, {"ex", {{"seq", 3}}}},
                     json{{"t", "send"}, {"conv", "g:team"}, {"cmid", "f2"}, {"type", "system"},
                          {"body", "{}"}}}) {
      CAPTURE(bad.dump());
      CHECK(error_code(alice->request(bad)) == "bad_frame");
    }
    // nothing above changed the timeline, and the session goes on
    CHECK(whole_history(*alice, "g:team").size() == seq);
    CHECK(alice->request(send_frame("g:team", "a2", "still here"))["seq"] == seq + 1);
  }
}

TEST_CASE("recall in a room (read diffusion): the shared timeline is amended") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  for (auto* c : {alice.get(), bob.get()})
    REQUIRE(c->request({{"t", "join"}, {"conv", "r:lobby"}})["t"] == "ok");
  auto sent = alice->request(send_frame("r:lobby", "a1", "oops"));
  REQUIRE(sent["t"] == "ack");
  auto seq = sent["seq"].get<uint64_t>();
  auto e = alice->request(edit("r:lobby", seq, "better"));
  REQUIRE(e["t"] == "ok");
  auto pushed = bob->wait_for([&](const json& f) {
    return f["t"] == "msg" && f["seq"] == e["seq"];
  });
  CHECK(pushed["type"] == "edit");
  CHECK(message_at(whole_history(*bob, "r:lobby"), seq)["body"] == "better");
  REQUIRE(alice->request(recall("r:lobby", seq))["t"] == "ok");
  auto m = message_at(whole_history(*bob, "r:lobby"), seq);
  CHECK(m["recalled"] == true);
  CHECK(m["body"] == "");
  CHECK(message_at(whole_history(*bob, "r:lobby"), e["seq"])["body"] == "");
}
