// The server API (docs/API.md) through the real binary: real HTTP and
// WebSockets on 127.0.0.1, real LMDB in a temp dir. What the API does is
// checked where a client sees it: pushes, history, group state, closes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/cluster.hpp"
#include "tests/support/engine_process.hpp"
#include "tests/support/http_client.hpp"

using namespace imengine::testing;

namespace {

const std::string key = "test-api-key-0123456789";

std::vector<std::string> with_api(std::vector<std::string> more = {}) {
  more.push_back("--api-key=" + key);
  return more;
}

http_response api(const engine_process& e, const std::string& method, const std::string& target,
                  const json& body = nullptr) {
  return http_request(e.port(), method, target, body.is_null() ? std::string{} : body.dump(),
                      bearer(key));
}

http_response post(const engine_process& e, const std::string& target, const json& body) {
  return api(e, "POST", target, body);
}

json api_send(const std::string& from, const std::string& conv, const std::string& cmid,
              const std::string& body) {
  return json{{"from", from}, {"conv", conv}, {"cmid", cmid}, {"type", "text"}, {"body", body}};
}

// The error code of an answer, checking its status and shape.
std::string error_of(const http_response& r, int status) {
  CHECK(r.status == status);
  auto j = r.json();
  CHECK(j.is_object());
  CHECK(j.contains("msg"));
  return j.value("error", "");
}

auto is_msg_in(const std::string& conv) {
  return [conv](const json& f) { return f.value("t", "") == "msg" && f.value("conv", "") == conv; };
}

// The history of `conv` as the API reads it.
json api_history(const engine_process& e, const std::string& conv) {
  auto r = api(e, "GET", "/api/v1/conversations/" + conv + "/messages?limit=1000");
  REQUIRE(r.status == 200);
  return r.json()["msgs"];
}

} // namespace

TEST_CASE("without --api-key every /api/ path is 404") {
  temp_dir dir;
  engine_process engine(dir.str());
  CHECK(api(engine, "GET", "/api/v1/conversations/g:x/messages").status == 404);
  CHECK(post(engine, "/api/v1/messages", api_send("alice", "dm:alice:bob", "c1", "hi")).status
        == 404);
  CHECK(http_request(engine.port(), "GET", "/api/v1/nothing").status == 404);
  CHECK(http_get(engine.port(), "/healthz").first == 200);
  auto alice = engine.login("alice", "phone");
  CHECK(whole_history(*alice, "dm:alice:bob").empty());
}

TEST_CASE("without the key, or with a wrong one, 401 and nothing reaches a handler") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto body = api_send("alice", "dm:alice:bob", "c1", "hi").dump();
  const std::string target = "/api/v1/messages";
  for (const auto& headers : std::vector<http_headers>{
         {},
         {{"Authorization", "Bearer wrong"}},
         {{"Authorization", "Bearer " + key + "x"}},
         {{"Authorization", "Bearer " + key.substr(1)}},
         {{"Authorization", "Basic " + key}},
         {{"Authorization", key}},
       }) {
    auto r = http_request(engine.port(), "POST", target, body, headers);
    CHECK(error_of(r, 401) == "unauthorized");
    CHECK(r.headers["www-authenticate"] == "Bearer");
  }
  // Not even its size is judged without the key.
  auto big = http_request(engine.port(), "POST", target, std::string(70000, 'x'),
                          {{"Authorization", "Bearer wrong"}});
  CHECK(big.status == 401);
  CHECK(http_request(engine.port(), "GET", "/api/v1/users/alice/convs").status == 401);
  CHECK(http_request(engine.port(), "POST", "/api/v1/users/alice/disconnect").status == 401);
  // Nothing was stored: the client and the API both see an empty history.
  auto alice = engine.login("alice", "phone");
  CHECK(whole_history(*alice, "dm:alice:bob").empty());
  CHECK(api_history(engine, "dm:alice:bob").empty());
}

TEST_CASE("a send through the API: 200 after the commit, pushed live with iseq, in history") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  json send = api_send("alice", "dm:alice:bob", "api-1", "hello from the backend");
  send["ex"] = {{"order", 42}};
  auto r = post(engine, "/api/v1/messages", send);
  REQUIRE(r.status == 200);
  auto ack = r.json();
  CHECK(ack["conv"] == "dm:alice:bob");
  CHECK(ack["seq"] == 1);
  CHECK(ack["mid"].is_string());
  CHECK(ack["ts"].is_number_integer());
  CHECK_FALSE(ack.contains("dup"));
  for (auto* c : {alice.get(), bob.get()}) {
    auto m = c->wait_for(is_msg_in("dm:alice:bob"));
    CHECK(m["iseq"] == 1);
    CHECK(m["seq"] == 1);
    CHECK(m["mid"] == ack["mid"]);
    CHECK(m["from"] == "alice");
    CHECK(m["device"] == "api");
    CHECK(m["body"] == "hello from the backend");
    CHECK(m["ex"] == json{{"order", 42}});
    c->send({{"t", "ack"}, {"iseq", 1}});
  }
  auto history = whole_history(*bob, "dm:alice:bob");
  REQUIRE(history.size() == 1);
  CHECK(history[0]["mid"] == ack["mid"]);
  // The API's own history view: the same message JSON as history_result.
  auto via_api = api_history(engine, "dm:alice:bob");
  REQUIRE(via_api.size() == 1);
  CHECK(via_api[0] == history[0]);
}

TEST_CASE("an API send is deduplicated by (from, cmid), as a client send") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto first = post(engine, "/api/v1/messages", api_send("alice", "dm:alice:bob", "d-1", "once"));
  REQUIRE(first.status == 200);
  auto again = post(engine, "/api/v1/messages", api_send("alice", "dm:alice:bob", "d-1", "once"));
  REQUIRE(again.status == 200);
  CHECK(again.json()["seq"] == first.json()["seq"]);
  CHECK(again.json()["mid"] == first.json()["mid"]);
  CHECK(again.json()["dup"] == true);
  // The same cmid from the user's own client is the same message too.
  auto alice = engine.login("alice", "phone");
  auto client = alice->request(send_frame("dm:alice:bob", "d-1", "once"));
  CHECK(client["t"] == "ack");
  CHECK(client["seq"] == first.json()["seq"]);
  CHECK(client["dup"] == true);
  // Another sender's cmid of the same name is another message.
  auto bob = post(engine, "/api/v1/messages", api_send("bob", "dm:alice:bob", "d-1", "mine"));
  REQUIRE(bob.status == 200);
  CHECK(bob.json()["seq"] == 2);
  auto history = whole_history(*alice, "dm:alice:bob");
  REQUIRE(history.size() == 2);
  CHECK(history[0]["body"] == "once");
  CHECK(history[1]["body"] == "mine");
}

TEST_CASE("sends the API refuses: each with its documented status, nothing stored") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  const std::string t = "/api/v1/messages";
  auto raw = [&](const std::string& body) {
    return http_request(engine.port(), "POST", t, body, bearer(key));
  };
  CHECK(error_of(raw("{not json"), 400) == "bad_frame");
  CHECK(error_of(raw(""), 400) == "bad_frame");
  CHECK(error_of(raw("[1,2]"), 400) == "bad_frame");
  auto without = [](const char* field) {
    auto s = api_send("alice", "dm:alice:bob", "c", "x");
    s.erase(field);
    return s;
  };
  for (auto* field : {"from", "conv", "cmid", "body"})
    CHECK(error_of(post(engine, t, without(field)), 400) == "bad_frame");
  auto with = [](const char* field, json v) {
    auto s = api_send("alice", "dm:alice:bob", "c", "x");
    s[field] = std::move(v);
    return s;
  };
  CHECK(error_of(post(engine, t, with("from", 5)), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("from", "al ice")), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("conv", "dm:bob:alice")), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("conv", "x:y")), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("cmid", "")), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("body", json::array())), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("ex", "x")), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("prio", 7)), 400) == "bad_frame");
  CHECK(error_of(post(engine, t, with("mentions", "bob")), 400) == "bad_frame");
  // Membership: a dm names its members; a group's actor knows them.
  CHECK(error_of(post(engine, t, api_send("carol", "dm:alice:bob", "c", "x")), 403)
        == "forbidden");
  CHECK(error_of(post(engine, t, api_send("alice", "g:nobody", "c", "x")), 404) == "not_found");
  REQUIRE(post(engine, "/api/v1/groups", {{"conv", "g:team"}, {"owner", "alice"},
                                          {"members", {"bob"}}})
            .status == 200);
  CHECK(error_of(post(engine, t, api_send("carol", "g:team", "c", "x")), 403) == "forbidden");
  CHECK(error_of(post(engine, t, api_send("carol", "r:lobby", "c", "x")), 403) == "forbidden");
  // A body over --max-frame: 413, judged from Content-Length before any
  // of the body is read (none is sent here).
  CHECK(error_of(raw(std::string(70000, ' ')), 413) == "too_large");
  http_client c(engine.port());
  auto early = c.raw("POST " + t + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key
                     + "\r\nContent-Length: 100000000\r\n\r\n");
  CHECK(error_of(early, 413) == "too_large");
  CHECK(c.closed_by_server());
  // Method and path.
  CHECK(error_of(api(engine, "GET", t), 405) == "bad_frame");
  CHECK(error_of(api(engine, "DELETE", "/api/v1/groups"), 405) == "bad_frame");
  CHECK(error_of(api(engine, "GET", "/api/v1/nothing"), 404) == "not_found");
  CHECK(error_of(api(engine, "GET", "/api/v2/messages"), 404) == "not_found");
  // Nothing of it was stored: the group holds only its creation.
  CHECK(api_history(engine, "dm:alice:bob").empty());
  auto team = api_history(engine, "g:team");
  REQUIRE(team.size() == 1);
  CHECK(team[0]["type"] == "system");
}

TEST_CASE("from:system needs no membership: into a group and into a dm") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(post(engine, "/api/v1/groups", {{"conv", "g:team"}, {"owner", "alice"},
                                          {"members", {"bob"}}})
            .status == 200);
  auto r = post(engine, "/api/v1/messages", api_send("system", "g:team", "sys-1", "maintenance"));
  REQUIRE(r.status == 200);
  CHECK(r.json()["seq"] == 2);
  for (auto* c : {alice.get(), bob.get()}) {
    auto m = c->wait_for([](const json& f) { return f.value("body", "") == "maintenance"; });
    CHECK(m["from"] == "system");
    CHECK(m["conv"] == "g:team");
    CHECK(m["seq"] == 2);
    CHECK(m.contains("iseq"));
  }
  auto dm = post(engine, "/api/v1/messages", api_send("system", "dm:alice:bob", "sys-2", "psst"));
  REQUIRE(dm.status == 200);
  auto m = bob->wait_for([](const json& f) { return f.value("body", "") == "psst"; });
  CHECK(m["from"] == "system");
  // A resend from system is deduplicated too.
  auto again = post(engine, "/api/v1/messages", api_send("system", "g:team", "sys-1", "maintenance"));
  CHECK(again.json()["dup"] == true);
  CHECK(api_history(engine, "g:team").size() == 2);
}

TEST_CASE("groups through the API: create, add and remove, seen by the members") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto carol = engine.login("carol", "phone");
  auto created = post(engine, "/api/v1/groups",
                      {{"conv", "g:team"}, {"owner", "alice"}, {"members", {"bob"}}});
  REQUIRE(created.status == 200);
  CHECK(created.json() == json::object());
  for (auto* c : {alice.get(), bob.get()}) {
    auto m = c->wait_for(is_msg_in("g:team"));
    CHECK(m["type"] == "system");
    CHECK(m["from"] == "alice");
    CHECK(json::parse(m["body"].get<std::string>())["op"] == "create");
  }
  auto changed = post(engine, "/api/v1/groups/g:team/members",
                      {{"add", {"carol"}}, {"remove", {"bob"}}});
  REQUIRE(changed.status == 200);
  auto added = carol->wait_for(is_msg_in("g:team"));
  CHECK(json::parse(added["body"].get<std::string>())["op"] == "add");
  CHECK(added["from"] == "alice");   // the API acts as the owner
  auto removed = bob->wait_for([](const json& f) {
    return f.value("t", "") == "msg" && f.value("body", "").find("remove") != std::string::npos;
  });
  CHECK(removed["seq"] == 3);
  auto info = alice->request({{"t", "group_info"}, {"conv", "g:team"}});
  CHECK(info["members"] == json{"alice", "carol"});
  CHECK(info["owner"] == "alice");
  // The conv may be percent-encoded in the path.
  CHECK(post(engine, "/api/v1/groups/g%3Ateam/members", {{"add", {"dave"}}}).status == 200);
  CHECK(alice->request({{"t", "group_info"}, {"conv", "g:team"}})["members"]
        == json{"alice", "carol", "dave"});
  // Errors.
  CHECK(error_of(post(engine, "/api/v1/groups", {{"conv", "g:team"}, {"owner", "bob"},
                                                  {"members", json::array()}}),
                 403)
        == "forbidden");   // exists already
  CHECK(error_of(post(engine, "/api/v1/groups", {{"conv", "g:x"}, {"members", json::array()}}),
                 400)
        == "bad_frame");
  CHECK(error_of(post(engine, "/api/v1/groups", {{"conv", "r:x"}, {"owner", "a"},
                                                  {"members", json::array()}}),
                 400)
        == "bad_frame");
  CHECK(error_of(post(engine, "/api/v1/groups/g:none/members", {{"add", {"x"}}}), 404)
        == "not_found");
  CHECK(error_of(post(engine, "/api/v1/groups/r:lobby/members", {{"add", {"x"}}}), 400)
        == "bad_frame");
  CHECK(error_of(post(engine, "/api/v1/groups/g:team/members", json::object()), 400)
        == "bad_frame");
  CHECK(error_of(post(engine, "/api/v1/groups/g:team/members", {{"remove", {"alice"}}}), 400)
        == "bad_frame");   // the owner cannot be removed
  CHECK(api_history(engine, "g:team").size() == 4);   // create, add, remove, add
}

TEST_CASE("history through the API: pages, and its errors") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  for (int i = 1; i <= 3; ++i)
    REQUIRE(post(engine, "/api/v1/messages",
                 api_send("alice", "dm:alice:bob", "h" + std::to_string(i), std::to_string(i)))
              .status == 200);
  auto page = api(engine, "GET", "/api/v1/conversations/dm:alice:bob/messages?after=1&limit=1");
  REQUIRE(page.status == 200);
  auto j = page.json();
  REQUIRE(j["msgs"].size() == 1);
  CHECK(j["msgs"][0]["seq"] == 2);
  CHECK(j["msgs"][0]["body"] == "2");
  CHECK(j["more"] == true);
  auto before = api(engine, "GET", "/api/v1/conversations/dm:alice:bob/messages?before=3").json();
  REQUIRE(before["msgs"].size() == 2);
  CHECK(before["msgs"][0]["seq"] == 2);   // descending, as a client's `before`
  CHECK(before["more"] == false);
  CHECK(api(engine, "GET", "/api/v1/conversations/dm:alice:carol/messages").json()["msgs"].empty());
  CHECK(error_of(api(engine, "GET", "/api/v1/conversations/g:none/messages"), 404) == "not_found");
  CHECK(error_of(api(engine, "GET", "/api/v1/conversations/dm:bob:alice/messages"), 400)
        == "bad_frame");
  CHECK(error_of(api(engine, "GET", "/api/v1/conversations/dm:alice:bob/messages?after=x"), 400)
        == "bad_frame");
  CHECK(error_of(api(engine, "GET",
                     "/api/v1/conversations/dm:alice:bob/messages?after=1&before=3"),
                 400)
        == "bad_frame");
  CHECK(error_of(api(engine, "POST", "/api/v1/conversations/dm:alice:bob/messages"), 405)
        == "bad_frame");
}

// The whole list of `user` through the API, `limit` rows a page.
std::vector<json> api_convs(const engine_process& e, const std::string& user, int limit) {
  std::vector<json> out;
  std::string cursor;
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = api(e, "GET", "/api/v1/users/" + user + "/convs?limit=" + std::to_string(limit)
                             + (cursor.empty() ? "" : "&cursor=" + cursor));
    REQUIRE(r.status == 200);
    auto j = r.json();
    REQUIRE(j["convs"].size() <= static_cast<size_t>(limit));
    for (auto& row : j["convs"])
      out.push_back(row);
    if (!j["more"].get<bool>())
      return out;
    cursor = j.at("next").get<std::string>();
  }
  FAIL("convs paging does not end");
  return out;
}

TEST_CASE("the conversation list through the API: the client's list, paged the same way") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  for (int i = 0; i < 5; ++i)
    REQUIRE(post(engine, "/api/v1/messages",
                 api_send("alice", "dm:alice:u" + std::to_string(i), "c" + std::to_string(i), "m"))
              .status == 200);
  REQUIRE(post(engine, "/api/v1/groups", {{"conv", "g:g1"}, {"owner", "bob"},
                                         {"members", {"alice"}}})
            .status == 200);
  auto alice = engine.login("alice", "phone");
  auto rows = api_convs(engine, "alice", 2);
  CHECK(rows.size() == 6);
  CHECK(rows == whole_convs(*alice));
  CHECK(rows.front()["conv"] == "g:g1");
  CHECK(rows.front()["kind"] == "group");
  CHECK(rows.front()["unread"] == 1);   // bob's create; alice's position starts before it
  CHECK(api_convs(engine, "nobody", 10).empty());
  CHECK(error_of(api(engine, "GET", "/api/v1/users/al%20ice/convs"), 400) == "bad_frame");
  CHECK(error_of(api(engine, "GET", "/api/v1/users/alice/convs?cursor=%%%"), 400) == "bad_frame");
  CHECK(error_of(api(engine, "GET", "/api/v1/users/alice/convs?cursor=YWJj"), 400) == "bad_frame");
  CHECK(error_of(api(engine, "GET", "/api/v1/users/alice/convs?limit=-3"), 400) == "bad_frame");
  CHECK(error_of(api(engine, "POST", "/api/v1/users/alice/convs"), 405) == "bad_frame");
}

TEST_CASE("disconnect closes every device of the user with 4004, and no one else's") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto phone = engine.login("alice", "phone");
  auto laptop = engine.login("alice", "laptop");
  auto bob = engine.login("bob", "phone");
  auto r = post(engine, "/api/v1/users/alice/disconnect", json::object());
  REQUIRE(r.status == 200);
  CHECK(r.json() == json{{"closed", 2}});
  for (auto* c : {phone.get(), laptop.get()}) {
    REQUIRE(c->wait_closed(5000ms));
    CHECK(c->close_code() == uint16_t{4004});
  }
  CHECK(bob->request({{"t", "ping"}})["t"] == "pong");
  CHECK_FALSE(bob->close_code());
  // A user with no device online: nothing to close. The body is optional.
  auto none = api(engine, "POST", "/api/v1/users/carol/disconnect");
  REQUIRE(none.status == 200);
  CHECK(none.json() == json{{"closed", 0}});
  CHECK(error_of(api(engine, "POST", "/api/v1/users/a%2Fb/disconnect"), 400) == "bad_frame");
  // alice may come back.
  auto back = engine.login("alice", "phone");
  CHECK(back->request({{"t", "ping"}})["t"] == "pong");
}

TEST_CASE("tokens: issued with --auth=jwt and accepted by auth; refused without it") {
  temp_dir dir;
  engine_process engine(dir.str(),
                        with_api({"--auth=jwt", "--jwt-secret=s3cret", "--jwt-max-ttl=900"}));
  auto r = post(engine, "/api/v1/tokens", {{"sub", "alice"}, {"ttl_s", 600}});
  REQUIRE(r.status == 200);
  auto token = r.json()["token"].get<std::string>();
  auto auth = [&](const std::string& user) {
    auto c = engine.connect();
    return c->request({{"t", "auth"}, {"user", user}, {"device", "phone"}, {"token", token}});
  };
  CHECK(auth("alice")["t"] == "auth_ok");
  CHECK(auth("bob")["code"] == "unauthorized");
  CHECK(error_of(post(engine, "/api/v1/tokens", {{"sub", "system"}}), 400) == "bad_frame");
  CHECK(error_of(post(engine, "/api/v1/tokens", {{"sub", "alice"}, {"ttl_s", 0}}), 400)
        == "bad_frame");
  CHECK(error_of(post(engine, "/api/v1/tokens", {{"ttl_s", 10}}), 400) == "bad_frame");
  // a token auth would refuse is not issued
  CHECK(error_of(post(engine, "/api/v1/tokens", {{"sub", "alice"}, {"ttl_s", 901}}), 400)
        == "bad_frame");

  temp_dir dir2;
  engine_process open(dir2.str(), with_api());
  CHECK(error_of(post(open, "/api/v1/tokens", {{"sub", "alice"}}), 400) == "bad_frame");
}

TEST_CASE("no client may authenticate as system") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto c = engine.connect();
  auto r = c->request({{"t", "auth"}, {"user", "system"}, {"device", "phone"}});
  CHECK(r["t"] == "error");
  CHECK(r["code"] == "forbidden");
  // The connection is still there and not authenticated.
  CHECK(c->request({{"t", "sync"}})["code"] == "unauthorized");
}

namespace {

// A raw HTTP/1.1 exchange on 127.0.0.1 that reads with a 5 s timeout:
// what curl does with `Expect: 100-continue`.
struct raw_socket {
  int fd = -1;
  explicit raw_socket(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~raw_socket() { ::close(fd); }
  void send_all(const std::string& s) {
    REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
  }
  // Reads until `text` has arrived (or the timeout, or the end).
  std::string read_until(const std::string& text) {
    std::string got;
    char buf[4096];
    while (got.find(text) == std::string::npos) {
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
};

} // namespace

TEST_CASE("Expect: 100-continue gets the interim 100 before the body is sent") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  auto body = api_send("alice", "dm:alice:bob", "e1", std::string(3000, 'x')).dump();
  raw_socket s(engine.port());
  s.send_all("POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key
             + "\r\nContent-Type: application/json\r\nContent-Length: "
             + std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n");
  auto interim = s.read_until("\r\n\r\n");
  CHECK(interim.rfind("HTTP/1.1 100 Continue\r\n", 0) == 0);
  s.send_all(body);
  auto answer = s.read_until("}");
  CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(answer.find("\"seq\":1") != std::string::npos);
  CHECK(api_history(engine, "dm:alice:bob").size() == 1);
  // a body over --max-frame is refused from its header, without a 100
  raw_socket big(engine.port());
  big.send_all("POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key
               + "\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n");
  CHECK(big.read_until("\r\n\r\n").rfind("HTTP/1.1 413", 0) == 0);
}

TEST_CASE("one keep-alive connection serves many API requests") {
  temp_dir dir;
  engine_process engine(dir.str(), with_api());
  http_client c(engine.port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.request("POST", "/api/v1/messages",
                       api_send("alice", "dm:alice:bob", "k" + std::to_string(i), "x").dump(),
                       bearer(key));
    REQUIRE(r.status == 200);
    CHECK(r.json()["seq"] == i + 1);
  }
  // A refused request does not end the connection either.
  CHECK(c.request("POST", "/api/v1/messages", "{", bearer(key)).status == 400);
  CHECK(c.request("GET", "/api/v1/users/alice/convs", {}, {}).status == 401);
  CHECK(c.request("GET", "/healthz").status == 200);
}

TEST_CASE("--api-key-file: the key from the file; unreadable or empty exits 2") {
  temp_dir dir;
  auto key_file = dir.str() + "/key";
  std::ofstream(key_file) << "from-a-file\n";
  temp_dir data;
  engine_process engine(data.str(), {"--api-key-file=" + key_file});
  auto ok = http_request(engine.port(), "GET", "/api/v1/conversations/g:x/messages", {},
                         bearer("from-a-file"));
  CHECK(ok.status == 404);   // authorized: the group does not exist
  CHECK(ok.json()["error"] == "not_found");
  CHECK(http_request(engine.port(), "GET", "/api/v1/conversations/g:x/messages", {},
                     bearer("from-a-fil"))
          .status
        == 401);
  auto exit_code = [&](const std::string& flags) {
    auto cmd = engine_binary() + " --port=0 --data=" + data.str() + "/other "
               + flags + " >/dev/null 2>&1";
    auto status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::ofstream(dir.str() + "/empty") << "\n";
  CHECK(exit_code("--api-key-file=" + dir.str() + "/missing") == 2);
  CHECK(exit_code("--api-key-file=" + dir.str() + "/empty") == 2);
  CHECK(exit_code("--api-key-file=" + key_file + " --api-key=x") == 2);
}

TEST_CASE("in a cluster any node's API reaches conversations and users on every node") {
  cluster_fixture cluster(2, with_api());
  REQUIRE(cluster.wait_cluster_up());
  auto& n1 = cluster.node(1);
  auto& n2 = cluster.node(2);
  // Several dms, so that both nodes own some of them and some users.
  for (int i = 0; i < 6; ++i) {
    auto a = "a" + std::to_string(i), b = "b" + std::to_string(i);
    auto conv = "dm:" + a + ":" + b;
    auto receiver = n2.login(b, "phone");
    auto r = post(n1, "/api/v1/messages", api_send(a, conv, "x", "hi " + b));
    REQUIRE(r.status == 200);
    auto m = receiver->wait_for(is_msg_in(conv));
    CHECK(m["body"] == "hi " + b);
    CHECK(m["iseq"] == 1);
    auto again = post(n2, "/api/v1/messages", api_send(a, conv, "x", "hi " + b));
    CHECK(again.json()["dup"] == true);
    CHECK(api_history(n2, conv).size() == 1);
    CHECK(api_history(n1, conv).size() == 1);
    auto d = post(n1, "/api/v1/users/" + b + "/disconnect", json::object());
    CHECK(d.json() == json{{"closed", 1}});
    REQUIRE(receiver->wait_closed(5000ms));
    CHECK(receiver->close_code() == uint16_t{4004});
  }
  REQUIRE(post(n2, "/api/v1/groups", {{"conv", "g:across"}, {"owner", "a0"},
                                      {"members", {"b0"}}})
            .status == 200);
  REQUIRE(post(n1, "/api/v1/groups/g:across/members", {{"add", {"a1"}}}).status == 200);
  auto a1 = n1.login("a1", "phone");
  CHECK(a1->request({{"t", "group_info"}, {"conv", "g:across"}})["members"]
        == json{"a0", "a1", "b0"});
  // a user's conversations on both nodes, one list whichever node is asked
  REQUIRE(post(n2, "/api/v1/messages", api_send("a0", "dm:a0:b1", "y", "more")).status == 200);
  REQUIRE(post(n2, "/api/v1/messages", api_send("a0", "dm:a0:b2", "z", "more")).status == 200);
  auto list = api_convs(n1, "a0", 1);
  std::set<std::string> convs;
  for (const auto& row : list)
    convs.insert(row["conv"].get<std::string>());
  CHECK(convs == std::set<std::string>{"dm:a0:b0", "dm:a0:b1", "dm:a0:b2", "g:across"});
  CHECK(list.size() == 4);
  CHECK(api_convs(n2, "a0", 3) == list);
}
