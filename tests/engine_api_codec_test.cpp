// The server API's pure half (engine/api_codec.hpp): targets, bodies,
// the error -> status mapping, and the answers' JSON.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine/api_codec.hpp"

using namespace imengine;

namespace {

json body(const char* text) {
  auto b = parse_body(text);
  if (!b)
    FAIL("not a body: " << b.error().msg);
  return *b;
}

template <class T>
std::string error_of(const result<T>& r) {
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::bad_frame);
  return r.error().msg;
}

} // namespace

TEST_CASE("targets: segments percent-decoded, query parameters") {
  auto t = parse_target("/api/v1/conversations/dm%3Aalice%3Abob/messages?after=5&limit=10");
  REQUIRE(t);
  CHECK(t->path == std::vector<std::string>{"api", "v1", "conversations", "dm:alice:bob",
                                            "messages"});
  CHECK(t->query.at("after") == "5");
  CHECK(t->query.at("limit") == "10");
  t = parse_target("/api/v1/groups/g:team/members/");
  REQUIRE(t);
  CHECK(t->path.back() == "members");   // a trailing slash names the same resource
  t = parse_target("/a?x=a+b%20c&&y");
  REQUIRE(t);
  CHECK(t->query.at("x") == "a b c");
  CHECK(t->query.at("y") == "");
  error_of(parse_target("api/v1"));
  error_of(parse_target(""));
  error_of(parse_target("/api/%4"));
  error_of(parse_target("/api/%zz"));
  error_of(parse_target("/api?x=%"));
}

TEST_CASE("path patterns") {
  std::vector<std::string> params;
  auto path = [](const char* t) { return parse_target(t)->path; };
  CHECK(match_path("/api/v1/users/{}/convs", path("/api/v1/users/alice/convs"), params));
  CHECK(params == std::vector<std::string>{"alice"});
  params.clear();
  CHECK_FALSE(match_path("/api/v1/users/{}/convs", path("/api/v1/users/alice"), params));
  CHECK_FALSE(match_path("/api/v1/users/{}/convs", path("/api/v1/users/alice/convs/x"), params));
  CHECK_FALSE(match_path("/api/v1/messages", path("/api/v1/message"), params));
  CHECK(params.empty());   // nothing appended by a failed match
  CHECK(match_path("/api/v1/messages", path("/api/v1/messages"), params));
}

TEST_CASE("bodies: JSON objects only, not too deep") {
  CHECK(parse_body(R"({"a":1})"));
  CHECK(error_of(parse_body("")).find("not valid JSON") != std::string::npos);
  CHECK(error_of(parse_body("{")).find("not valid JSON") != std::string::npos);
  CHECK(error_of(parse_body("[1]")).find("object") != std::string::npos);
  CHECK(error_of(parse_body("\"x\"")).find("object") != std::string::npos);
  std::string deep = R"({"ex":)" + std::string(100, '[') + std::string(100, ']') + "}";
  CHECK(error_of(parse_body(deep)).find("deeper") != std::string::npos);
}

TEST_CASE("an API send: a client send plus from and mentions") {
  auto s = parse_api_send(body(
    R"({"from":"alice","conv":"dm:alice:bob","cmid":"c1","body":"hi","ex":{"k":1},"mentions":["bob","@all"]})"));
  REQUIRE(s);
  CHECK(s->from == "alice");
  CHECK(s->conv == "dm:alice:bob");
  CHECK(s->item.cmid == "c1");
  CHECK(s->item.type == "text");
  CHECK(s->item.body == "hi");
  CHECK(s->item.ex == R"({"k":1})");
  CHECK(s->item.mentions == std::vector<std::string>{"bob", "@all"});
  CHECK(parse_api_send(body(R"({"from":"system","conv":"g:x","cmid":"c","body":""})")));
  CHECK(error_of(parse_api_send(body(R"({"conv":"g:x","cmid":"c","body":""})")))
        == "missing field 'from'");
  CHECK(error_of(parse_api_send(body(R"({"from":7,"conv":"g:x","cmid":"c","body":""})")))
        == "field 'from' must be a string");
  CHECK(error_of(parse_api_send(body(R"({"from":"a b","conv":"g:x","cmid":"c","body":""})")))
        == "malformed from");
  CHECK(error_of(parse_api_send(body(R"({"from":"a","conv":"x:y","cmid":"c","body":""})")))
        == "malformed conv");
  CHECK(error_of(parse_api_send(body(R"({"from":"a","conv":"g:x","body":""})")))
        == "missing field 'cmid'");
  CHECK(error_of(parse_api_send(body(R"({"from":"a","conv":"g:x","cmid":"c"})")))
        == "missing field 'body'");
  CHECK(error_of(parse_api_send(body(R"({"from":"a","conv":"g:x","cmid":"c","body":1})")))
        == "field 'body' must be a string");
  CHECK(error_of(parse_api_send(body(R"({"from":"a","conv":"g:x","cmid":"c","body":"","ex":[]})")))
        == "field 'ex' must be an object");
  CHECK(error_of(parse_api_send(
          body(R"({"from":"a","conv":"g:x","cmid":"c","body":"","mentions":"bob"})")))
        == "field 'mentions' must be an array");
  CHECK(error_of(parse_api_send(
          body(R"({"from":"a","conv":"g:x","cmid":"c","body":"","mentions":["b c"]})")))
        == "malformed user in 'mentions[0]'");
}

TEST_CASE("groups: create with an owner; members add and remove") {
  auto g = parse_api_group_create(body(R"({"conv":"g:team","owner":"alice","members":["bob"]})"));
  REQUIRE(g);
  CHECK(g->owner == "alice");
  CHECK(g->members == std::vector<std::string>{"bob"});
  error_of(parse_api_group_create(body(R"({"conv":"g:team","members":[]})")));
  error_of(parse_api_group_create(body(R"({"conv":"r:x","owner":"a","members":[]})")));
  error_of(parse_api_group_create(body(R"({"conv":"g:x","owner":"system","members":[]})")));
  error_of(parse_api_group_create(body(R"({"conv":"g:x","owner":"a","members":["system"]})")));
  error_of(parse_api_group_create(body(R"({"conv":"g:x","owner":"a"})")));
  auto m = parse_api_members_change(body(R"({"add":["dave"],"remove":["bob","carol"]})"));
  REQUIRE(m);
  CHECK(m->add == std::vector<std::string>{"dave"});
  CHECK(m->remove == std::vector<std::string>{"bob", "carol"});
  CHECK(parse_api_members_change(body(R"({"remove":[]})")));
  CHECK(error_of(parse_api_members_change(body("{}"))) == "give 'add', 'remove' or both");
  CHECK(error_of(parse_api_members_change(body(R"({"add":"dave"})")))
        == "field 'add' must be an array");
  CHECK(error_of(parse_api_members_change(body(R"({"add":[1]})")))
        == "field 'add[0]' must be a string");
  error_of(parse_api_members_change(body(R"({"add":["system"]})")));
}

TEST_CASE("history parameters, as a client history") {
  auto t = parse_target("/x?after=3&limit=5000");
  auto h = parse_api_history("g:x", *t);
  REQUIRE(h);
  CHECK(h->after == 3);
  CHECK_FALSE(h->before);
  CHECK(h->limit == max_page);   // clamped
  h = parse_api_history("g:x", *parse_target("/x?before=9&limit=0"));
  REQUIRE(h);
  CHECK(h->before == 9);
  CHECK(h->limit == 1);
  h = parse_api_history("g:x", *parse_target("/x"));
  REQUIRE(h);
  CHECK(h->limit == 50);
  error_of(parse_api_history("g:x", *parse_target("/x?after=1&before=5")));
  error_of(parse_api_history("g:x", *parse_target("/x?after=-1")));
  error_of(parse_api_history("g:x", *parse_target("/x?after=1.5")));
  error_of(parse_api_history("g:x", *parse_target("/x?limit=")));
  error_of(parse_api_history("g:x", *parse_target("/x?after=99999999999999999999999")));
}

TEST_CASE("tokens and path parameters") {
  auto t = parse_api_token(body(R"({"sub":"alice"})"));
  REQUIRE(t);
  CHECK(t->ttl_s == 3600);
  t = parse_api_token(body(R"({"sub":"alice","ttl_s":60})"));
  REQUIRE(t);
  CHECK(t->ttl_s == 60);
  error_of(parse_api_token(body(R"({"sub":"alice","ttl_s":0})")));
  error_of(parse_api_token(body(R"({"sub":"alice","ttl_s":1.5})")));
  error_of(parse_api_token(body(R"({"sub":"alice","ttl_s":99999999999})")));
  error_of(parse_api_token(body(R"({"sub":"system"})")));
  error_of(parse_api_token(body(R"({})")));
  CHECK(path_conv("dm:alice:bob"));
  error_of(path_conv("dm:bob:alice"));
  CHECK(path_group("g:x"));
  error_of(path_group("r:x"));
  CHECK(path_user("alice"));
  error_of(path_user("a/b"));
}

TEST_CASE("a bot's message gets the checks of a client send") {
  send_item ok{"c1", "text", "hi", "", 0, {}};
  CHECK_FALSE(check_send_item(ok, 100));
  auto bad_cmid = ok;
  bad_cmid.cmid = "";
  CHECK(check_send_item(bad_cmid, 100)->code == errc::bad_frame);
  auto bad_ex = ok;
  bad_ex.ex = "[1]";
  CHECK(check_send_item(bad_ex, 100)->code == errc::bad_frame);
  auto bad_prio = ok;
  bad_prio.prio = 2;
  CHECK(check_send_item(bad_prio, 100)->code == errc::bad_frame);
  auto big = ok;
  big.body = std::string(200, 'x');
  CHECK(check_send_item(big, 100)->code == errc::too_large);
}

TEST_CASE("errors: the documented status of each code, and their JSON") {
  CHECK(http_status(errc::bad_frame) == 400);
  CHECK(http_status(errc::unauthorized) == 401);
  CHECK(http_status(errc::forbidden) == 403);
  CHECK(http_status(errc::not_found) == 404);
  CHECK(http_status(errc::too_large) == 413);
  CHECK(http_status(errc::rejected) == 422);
  CHECK(http_status(errc::rate_limited) == 429);
  CHECK(http_status(errc::unavailable) == 503);
  CHECK(http_status(errc::overloaded) == 503);
  CHECK(http_status(errc::storage) == 500);
  CHECK(http_status(errc::internal) == 500);
  auto r = api_error({errc::forbidden, "not a member of g:x"});
  CHECK(r.status == 403);
  CHECK(json::parse(r.body) == json{{"error", "forbidden"}, {"msg", "not a member of g:x"}});
  CHECK(api_error({errc::internal, "later"}, 501).status == 501);
  CHECK(api_send_result("g:x", 4, 77, 1000, false)
        == json{{"conv", "g:x"}, {"seq", 4}, {"mid", "77"}, {"ts", 1000}});
  CHECK(api_send_result("g:x", 4, 77, 1000, true)["dup"] == true);
  message m;
  m.conv = "g:x";
  m.seq = 2;
  auto h = api_history_result({m}, true);
  CHECK(h["more"] == true);
  CHECK(h["msgs"][0] == msg_frame(m, std::nullopt));
}
