#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "engine/frame.hpp"
#include "engine/frame_writer.hpp"

using namespace imengine;
using namespace nlohmann::literals;

namespace {

// "<ok>" for a success, "<code X>" for a failure other than bad_frame, else
// the bad_frame message: lets each check state the outcome in one line.
template <class T>
std::string bad(const result<T>& r) {
  if (r)
    return "<ok>";
  if (r.error().code != errc::bad_frame)
    return "<code " + std::string{to_string(r.error().code)} + ">";
  return r.error().msg;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A send frame with one field replaced (or removed when `value` is null).
json send_with(const std::string& key, json value) {
  auto f = R"({"t":"send","conv":"dm:alice:bob","cmid":"c-1","body":"hi"})"_json;
  if (value.is_null())
    f.erase(key);
  else
    f[key] = std::move(value);
  return f;
}

json decoded(const std::string& bytes, encoding enc) {
  auto r = decode_frame(bytes, enc);
  if (!r)
    FAIL("decode failed: " << r.error().msg);
  return *r;
}

// Round trip through both encodings: the msgpack frame must decode to the
// very object the JSON frame decodes to.
void check_round_trip(const json& frame) {
  CAPTURE(frame.dump());
  auto via_json = decoded(encode_frame(frame, encoding::json), encoding::json);
  auto via_msgpack = decoded(encode_frame(frame, encoding::msgpack), encoding::msgpack);
  CHECK(via_json == frame);
  CHECK(via_msgpack == frame);
  CHECK(via_msgpack == via_json);
}

std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

message sample_message() {
  message m;
  m.conv = "dm:alice:bob";
  m.seq = 42;
  m.mid = 7301234567890123456ull;
  m.from = "alice";
  m.device = "phone";
  m.cmid = "c-1";
  m.type = "text";
  m.body = "hi";
  m.ex = R"({"reply_to":"41","tags":["a"]})";
  m.ts = 1763800000123;
  return m;
}

} // namespace

// ---- decode_frame -----------------------------------------------------------

TEST_CASE("decode_frame accepts an object with a string t") {
  auto f = decoded(R"({"t":"ping","req":7,"x":[1,{"y":null}]})", encoding::json);
  CHECK(f == R"({"t":"ping","req":7,"x":[1,{"y":null}]})"_json);
  CHECK(request_id(f) == 7);
  CHECK(request_id(decoded(R"({"t":"ping","req":-3})", encoding::json)) == -3);
  CHECK(request_id(decoded(R"({"t":"ping"})", encoding::json)) == std::nullopt);
  auto max = std::to_string(std::numeric_limits<int64_t>::max());
  CHECK(request_id(decoded(R"({"t":"a","req":)" + max + "}", encoding::json))
        == std::numeric_limits<int64_t>::max());
}

TEST_CASE("decode_frame rejects what is not a frame") {
  struct bad_case { const char* what; std::string text; const char* msg; };
  std::vector<bad_case> cases{
    {"garbage", "{{{", "not valid JSON"},
    {"empty", "", "not valid JSON"},
    {"trailing bytes", R"({"t":"a"} x)", "not valid JSON"},
    {"invalid UTF-8", "{\"t\":\"a\xff\"}", "not valid JSON"},
    {"array", "[1,2,3]", "frame must be an object"},
    {"number", "42", "frame must be an object"},
    {"string", "\"t\"", "frame must be an object"},
    {"null", "null", "frame must be an object"},
    {"no t", R"({"req":1})", "missing field 't'"},
    {"t number", R"({"t":5})", "field 't' must be a string"},
    {"t null", R"({"t":null})", "field 't' must be a string"},
    {"req string", R"({"t":"ping","req":"x"})", "field 'req' must be an integer"},
    {"req float", R"({"t":"ping","req":1.5})", "field 'req' must be an integer"},
    {"req integral float", R"({"t":"ping","req":1.0})", "field 'req' must be an integer"},
    {"req bool", R"({"t":"ping","req":true})", "field 'req' must be an integer"},
    {"req too big", R"({"t":"ping","req":9223372036854775808})", "field 'req' is out of range"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    CHECK(bad(decode_frame(c.text, encoding::json)) == c.msg);
  }
}

TEST_CASE("decode_frame refuses deep nesting in either encoding") {
  auto ok = R"({"t":"a","x":)" + nested_arrays(60) + "}";
  CHECK(bad(decode_frame(ok, encoding::json)) == "<ok>");
  auto deep = R"({"t":"a","x":)" + nested_arrays(100) + "}";
  CHECK(contains(bad(decode_frame(deep, encoding::json)), "nested deeper"));
  // 60000 x fixarray(1): would recurse 60000 frames deep in the msgpack reader
  std::string bomb(60000, '\x91');
  bomb += '\xc0';
  CHECK(contains(bad(decode_frame(bomb, encoding::msgpack)), "nested deeper"));
  auto deep_json = json::parse(deep);
  CHECK(bad(decode_frame(encode_frame(deep_json, encoding::msgpack), encoding::msgpack))
        != "<ok>");
}

TEST_CASE("decode_frame: msgpack errors") {
  CHECK(bad(decode_frame(std::string("\xc1\xff\x00garbage", 10), encoding::msgpack))
        == "not valid msgpack");
  CHECK(bad(decode_frame("", encoding::msgpack)) == "not valid msgpack");
  auto bytes = encode_frame(R"({"t":"send","body":"hello"})"_json, encoding::msgpack);
  CHECK(bad(decode_frame(bytes.substr(0, bytes.size() - 2), encoding::msgpack))
        == "not valid msgpack");
  CHECK(bad(decode_frame(bytes + "\x01", encoding::msgpack)) == "not valid msgpack");
  CHECK(bad(decode_frame(encode_frame(json::array({1, 2}), encoding::msgpack),
                         encoding::msgpack))
        == "frame must be an object");
  CHECK(bad(decode_frame(encode_frame({{"t", 1}}, encoding::msgpack), encoding::msgpack))
        == "field 't' must be a string");
  CHECK(bad(decode_frame(encode_frame({{"t", "a"}, {"req", 2.5}}, encoding::msgpack),
                         encoding::msgpack))
        == "field 'req' must be an integer");
}

TEST_CASE("decode_frame: msgpack signed integer types count as integers") {
  // {"t":"x","req":int8(5),"iseq":int16(300)}: a client may pick any int type
  std::string bytes = "\x83\xa1t\xa1x\xa3req\xd0\x05\xa4iseq\xd1\x01\x2c";
  auto f = decoded(bytes, encoding::msgpack);
  CHECK(request_id(f) == 5);
  auto ack = parse_ack(f);
  REQUIRE(ack);
  CHECK(ack->iseq == 300);
}

TEST_CASE("encode_frame never throws on bytes that are not UTF-8") {
  // msgpack strings may hold any bytes; a JSON client still gets valid text
  json f{{"t", "msg"}, {"body", std::string("a\xff" "b")}};
  std::string text;
  CHECK_NOTHROW(text = encode_frame(f, encoding::json));
  CHECK(text == "{\"body\":\"a\xef\xbf\xbd" "b\",\"t\":\"msg\"}");
  CHECK(bad(decode_frame(text, encoding::json)) == "<ok>");
}

TEST_CASE("request_id ignores what is not an integer req") {
  CHECK(request_id(json::array()) == std::nullopt);
  CHECK(request_id(json(5)) == std::nullopt);
  CHECK(request_id(R"({"req":"1"})"_json) == std::nullopt);
  CHECK(request_id(R"({"req":1.0})"_json) == std::nullopt);
}

// ---- parse_* --------------------------------------------------------------------

TEST_CASE("parse_auth") {
  auto a = parse_auth(R"({"t":"auth","user":"alice","device":"phone","token":"x.y.z"})"_json);
  REQUIRE(a);
  CHECK(a->user == "alice");
  CHECK(a->device == "phone");
  CHECK(a->token == "x.y.z");
  auto no_token = parse_auth(R"({"t":"auth","user":"alice","device":"phone"})"_json);
  REQUIRE(no_token);
  CHECK(no_token->token.empty());

  CHECK(bad(parse_auth(R"({"t":"auth","device":"phone"})"_json)) == "missing field 'user'");
  CHECK(bad(parse_auth(R"({"t":"auth","user":"alice"})"_json)) == "missing field 'device'");
  CHECK(bad(parse_auth(R"({"t":"auth","user":1,"device":"p"})"_json))
        == "field 'user' must be a string");
  CHECK(bad(parse_auth(R"({"t":"auth","user":"al ice","device":"p"})"_json))
        == "malformed user");
  CHECK(bad(parse_auth(R"({"t":"auth","user":"alice","device":""})"_json))
        == "malformed device");
  CHECK(bad(parse_auth(R"({"t":"auth","user":"alice","device":"p","token":5})"_json))
        == "field 'token' must be a string");
  CHECK(bad(parse_auth(json::array())) == "frame must be an object");
}

TEST_CASE("parse_send: fields and defaults") {
  auto s = parse_send(send_with("ex", R"({"b":[1,2],"a":"x"})"_json));
  REQUIRE(s);
  CHECK(s->conv == "dm:alice:bob");
  CHECK(s->item.cmid == "c-1");
  CHECK(s->item.body == "hi");
  CHECK(s->item.type == "text");
  CHECK(s->item.prio == 0);
  CHECK(json::parse(s->item.ex) == R"({"a":"x","b":[1,2]})"_json);

  auto plain = parse_send(send_with("ex", nullptr));
  REQUIRE(plain);
  CHECK(plain->item.ex.empty());

  auto full = parse_send(R"({"t":"send","conv":"g:team","cmid":"!x~","type":"image",
                             "body":"","prio":1})"_json);
  REQUIRE(full);
  CHECK(full->conv == "g:team");
  CHECK(full->item.cmid == "!x~");
  CHECK(full->item.type == "image");
  CHECK(full->item.body.empty());
  CHECK(full->item.prio == 1);
  CHECK(bad(parse_send(send_with("type", std::string(64, 't')))) == "<ok>");
  CHECK(bad(parse_send(send_with("prio", 0))) == "<ok>");
}

TEST_CASE("parse_send: mentions are optional user ids or @all") {
  auto s = parse_send(send_with("mentions", json::array({"bob", "@all", "bob"})));
  REQUIRE(s);
  CHECK(s->item.mentions == std::vector<std::string>{"bob", "@all", "bob"});   // resolved later
  auto none = parse_send(send_with("mentions", json::array()));
  REQUIRE(none);
  CHECK(none->item.mentions.empty());
  CHECK(bad(parse_send(send_with("mentions", json(std::vector<std::string>(50, "b")))))
        == "<ok>");
}

TEST_CASE("parse_send: every bad field is named") {
  const std::string reserved_msg = "malformed type (1-64 bytes; system, recall and edit are the engine's)";
  struct bad_case { const char* what; json frame; std::string msg; };
  std::vector<bad_case> cases{
    {"conv missing", send_with("conv", nullptr), "missing field 'conv'"},
    {"conv number", send_with("conv", 5), "field 'conv' must be a string"},
    {"dm out of order", send_with("conv", "dm:bob:alice"), "malformed conv"},
    {"dm with itself", send_with("conv", "dm:bob:bob"), "malformed conv"},
    {"unknown kind", send_with("conv", "x:y"), "malformed conv"},
    {"cmid missing", send_with("cmid", nullptr), "missing field 'cmid'"},
    {"cmid number", send_with("cmid", 1), "field 'cmid' must be a string"},
    {"cmid space", send_with("cmid", "a b"), "malformed cmid"},
    {"cmid empty", send_with("cmid", ""), "malformed cmid"},
    {"cmid too long", send_with("cmid", std::string(65, 'c')), "malformed cmid"},
    {"body missing", send_with("body", nullptr), "missing field 'body'"},
    {"body number", send_with("body", 5), "field 'body' must be a string"},
    {"body object", send_with("body", json::object()), "field 'body' must be a string"},
    {"type number", send_with("type", 1), "field 'type' must be a string"},
    {"type empty", send_with("type", ""), reserved_msg},
    {"type too long", send_with("type", std::string(65, 't')), reserved_msg},
    {"type system", send_with("type", "system"), reserved_msg},
    {"type recall", send_with("type", "recall"), reserved_msg},
    {"type edit", send_with("type", "edit"), reserved_msg},
    {"mentions string", send_with("mentions", "bob"), "field 'mentions' must be an array"},
    {"mentions number", send_with("mentions", json::array({1})),
     "field 'mentions[0]' must be a string"},
    {"mentions bad user", send_with("mentions", json::array({"b c"})),
     "malformed user in 'mentions[0]'"},
    {"mentions 51", send_with("mentions", json(std::vector<std::string>(51, "bob"))),
     "field 'mentions' must have 0..50 elements"},
    {"ex array", send_with("ex", json::array({1})), "field 'ex' must be an object"},
    {"ex string", send_with("ex", "{}"), "field 'ex' must be an object"},
    {"prio 7", send_with("prio", 7), "field 'prio' must be an integer from 0 to 1"},
    {"prio -1", send_with("prio", -1), "field 'prio' must be an integer from 0 to 1"},
    {"prio float", send_with("prio", 1.0), "field 'prio' must be an integer from 0 to 1"},
    {"prio string", send_with("prio", "1"), "field 'prio' must be an integer from 0 to 1"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    CHECK(bad(parse_send(c.frame)) == c.msg);
  }
}

TEST_CASE("parse_send_batch") {
  auto f = R"({"t":"send_batch","conv":"g:team","msgs":[
    {"cmid":"a","body":"1"},
    {"cmid":"b","body":"2","type":"image","ex":{"k":1},"prio":1}]})"_json;
  auto b = parse_send_batch(f);
  REQUIRE(b);
  CHECK(b->conv == "g:team");
  REQUIRE(b->items.size() == 2);
  CHECK(b->items[0].cmid == "a");
  CHECK(b->items[0].type == "text");
  CHECK(b->items[0].ex.empty());
  CHECK(b->items[1].cmid == "b");
  CHECK(b->items[1].body == "2");
  CHECK(b->items[1].type == "image");
  CHECK(b->items[1].ex == R"({"k":1})");
  CHECK(b->items[1].prio == 1);

  auto batch_of = [](size_t n) {
    json f{{"t", "send_batch"}, {"conv", "g:team"}, {"msgs", json::array()}};
    for (size_t i = 0; i < n; ++i)
      f["msgs"].push_back({{"cmid", "c" + std::to_string(i)}, {"body", "x"}});
    return f;
  };
  CHECK(bad(parse_send_batch(batch_of(max_batch))) == "<ok>");
  CHECK(bad(parse_send_batch(batch_of(max_batch + 1)))
        == "field 'msgs' must have 1..100 elements");
  CHECK(bad(parse_send_batch(batch_of(0))) == "field 'msgs' must have 1..100 elements");

  auto with_msgs = [](json msgs) {
    return json{{"t", "send_batch"}, {"conv", "g:team"}, {"msgs", std::move(msgs)}};
  };
  CHECK(bad(parse_send_batch(R"({"t":"send_batch","conv":"g:team"})"_json))
        == "missing field 'msgs'");
  CHECK(bad(parse_send_batch(with_msgs(json::object()))) == "field 'msgs' must be an array");
  CHECK(bad(parse_send_batch(R"({"t":"send_batch","msgs":[{"cmid":"a","body":"1"}]})"_json))
        == "missing field 'conv'");
  CHECK(bad(parse_send_batch(with_msgs(R"([{"cmid":"a","body":"1"},"x"])"_json)))
        == "msgs[1] must be an object");
  CHECK(bad(parse_send_batch(with_msgs(R"([{"cmid":"a","body":"1"},{"cmid":"b"}])"_json)))
        == "missing field 'msgs[1].body'");
  CHECK(bad(parse_send_batch(with_msgs(R"([{"cmid":"a","body":1}])"_json)))
        == "field 'msgs[0].body' must be a string");
  CHECK(bad(parse_send_batch(with_msgs(R"([{"cmid":"a b","body":"1"}])"_json)))
        == "malformed cmid in 'msgs[0].cmid'");
  CHECK(bad(parse_send_batch(with_msgs(R"([{"cmid":"a","body":"1","prio":2}])"_json)))
        == "field 'msgs[0].prio' must be an integer from 0 to 1");
  CHECK(bad(parse_send_batch(with_msgs(
          R"([{"cmid":"a","body":"1"},{"cmid":"b","body":"2"},{"cmid":"a","body":"3"}])"_json)))
        == "duplicate cmid 'a' in batch");
}

TEST_CASE("parse_ack: iseq is a required non-negative integer") {
  auto a = parse_ack(R"({"t":"ack","iseq":58})"_json);
  REQUIRE(a);
  CHECK(a->iseq == 58);
  auto max = parse_ack(R"({"t":"ack","iseq":18446744073709551615})"_json);
  REQUIRE(max);
  CHECK(max->iseq == std::numeric_limits<uint64_t>::max());
  CHECK(bad(parse_ack(R"({"t":"ack"})"_json)) == "missing field 'iseq'");
  for (auto v : {R"(-1)"_json, R"(1.5)"_json, R"(2.0)"_json, R"("3")"_json, R"(null)"_json}) {
    CAPTURE(v.dump());
    CHECK(bad(parse_ack({{"t", "ack"}, {"iseq", v}}))
          == "field 'iseq' must be a non-negative integer");
  }
}

TEST_CASE("parse_sync: after defaults to 0, limit to 100, clamped to 1..max_page") {
  auto s = parse_sync(R"({"t":"sync"})"_json);
  REQUIRE(s);
  CHECK(s->after == 0);
  CHECK(s->limit == 100);
  s = parse_sync(R"({"t":"sync","after":57,"limit":20})"_json);
  REQUIRE(s);
  CHECK(s->after == 57);
  CHECK(s->limit == 20);
  CHECK(parse_sync(R"({"t":"sync","limit":0})"_json)->limit == 1);
  CHECK(parse_sync(R"({"t":"sync","limit":5000})"_json)->limit == max_page);
  CHECK(parse_sync(R"({"t":"sync","limit":18446744073709551615})"_json)->limit == max_page);
  CHECK(bad(parse_sync(R"({"t":"sync","after":1.5})"_json))
        == "field 'after' must be a non-negative integer");
  CHECK(bad(parse_sync(R"({"t":"sync","after":-1})"_json))
        == "field 'after' must be a non-negative integer");
  CHECK(bad(parse_sync(R"({"t":"sync","limit":-1})"_json))
        == "field 'limit' must be a non-negative integer");
  CHECK(bad(parse_sync(R"({"t":"sync","limit":"10"})"_json))
        == "field 'limit' must be a non-negative integer");
}

TEST_CASE("parse_history: at most one direction, limit 50 by default") {
  auto h = parse_history(R"({"t":"history","conv":"g:team"})"_json);
  REQUIRE(h);
  CHECK(h->conv == "g:team");
  CHECK_FALSE(h->after);
  CHECK_FALSE(h->before);
  CHECK(h->limit == 50);
  h = parse_history(R"({"t":"history","conv":"g:team","after":100,"limit":10})"_json);
  REQUIRE(h);
  CHECK(h->after == 100u);
  CHECK_FALSE(h->before);
  CHECK(h->limit == 10);
  h = parse_history(R"({"t":"history","conv":"r:lobby","before":0,"limit":0})"_json);
  REQUIRE(h);
  CHECK(h->before == 0u);
  CHECK_FALSE(h->after);
  CHECK(h->limit == 1);
  CHECK(parse_history(R"({"t":"history","conv":"g:x","limit":1001})"_json)->limit == 1000);

  CHECK(bad(parse_history(R"({"t":"history","conv":"dm:alice:bob","after":1,"before":5})"_json))
        == "fields 'after' and 'before' are mutually exclusive");
  CHECK(bad(parse_history(R"({"t":"history","after":1})"_json)) == "missing field 'conv'");
  CHECK(bad(parse_history(R"({"t":"history","conv":"g:"})"_json)) == "malformed conv");
  CHECK(bad(parse_history(R"({"t":"history","conv":"g:x","before":-2})"_json))
        == "field 'before' must be a non-negative integer");
  CHECK(bad(parse_history(R"({"t":"history","conv":"g:x","after":null})"_json))
        == "field 'after' must be a non-negative integer");
}

TEST_CASE("parse_read and parse_conv_req") {
  auto r = parse_read(R"({"t":"read","conv":"dm:alice:bob","seq":42})"_json);
  REQUIRE(r);
  CHECK(r->conv == "dm:alice:bob");
  CHECK(r->seq == 42);
  CHECK(bad(parse_read(R"({"t":"read","conv":"dm:alice:bob"})"_json)) == "missing field 'seq'");
  CHECK(bad(parse_read(R"({"t":"read","seq":1})"_json)) == "missing field 'conv'");
  CHECK(bad(parse_read(R"({"t":"read","conv":"dm:alice:bob","seq":4.2})"_json))
        == "field 'seq' must be a non-negative integer");

  auto c = parse_conv_req(R"({"t":"join","conv":"r:lobby"})"_json);
  REQUIRE(c);
  CHECK(c->conv == "r:lobby");
  CHECK(bad(parse_conv_req(R"({"t":"join"})"_json)) == "missing field 'conv'");
  CHECK(bad(parse_conv_req(R"({"t":"join","conv":["r:lobby"]})"_json))
        == "field 'conv' must be a string");
  CHECK(bad(parse_conv_req(R"({"t":"join","conv":"lobby"})"_json)) == "malformed conv");
}

TEST_CASE("parse_recall and parse_edit: a conv, a seq from 1, an edit's body") {
  auto r = parse_recall(R"({"t":"recall","conv":"g:team","seq":42})"_json);
  REQUIRE(r);
  CHECK(r->conv == "g:team");
  CHECK(r->seq == 42);
  CHECK(r->body.empty());
  auto e = parse_edit(R"({"t":"edit","conv":"dm:alice:bob","seq":7,"body":"fixed"})"_json);
  REQUIRE(e);
  CHECK(e->seq == 7);
  CHECK(e->body == "fixed");
  CHECK(bad(parse_recall(R"({"t":"recall","conv":"g:team","seq":0})"_json))
        == "field 'seq' must be at least 1");
  CHECK(bad(parse_recall(R"({"t":"recall","conv":"g:team","seq":-1})"_json))
        == "field 'seq' must be a non-negative integer");
  CHECK(bad(parse_recall(R"({"t":"recall","conv":"g:team","seq":"4"})"_json))
        == "field 'seq' must be a non-negative integer");
  CHECK(bad(parse_recall(R"({"t":"recall","seq":4})"_json)) == "missing field 'conv'");
  CHECK(bad(parse_recall(R"({"t":"recall","conv":"dm:b:a","seq":4})"_json)) == "malformed conv");
  CHECK(bad(parse_edit(R"({"t":"edit","conv":"g:team","seq":4})"_json)) == "missing field 'body'");
  CHECK(bad(parse_edit(R"({"t":"edit","conv":"g:team","seq":4,"body":1})"_json))
        == "field 'body' must be a string");
}

TEST_CASE("parse_members: a g: conv and a list of valid users") {
  auto m = parse_members(R"({"t":"group_create","conv":"g:team","members":["bob","carol"]})"_json);
  REQUIRE(m);
  CHECK(m->conv == "g:team");
  CHECK(m->members == std::vector<std::string>{"bob", "carol"});
  auto empty = parse_members(R"({"t":"group_create","conv":"g:solo","members":[]})"_json);
  REQUIRE(empty);
  CHECK(empty->members.empty());

  CHECK(contains(bad(parse_members(R"({"t":"group_add","conv":"r:lobby","members":[]})"_json)),
                 "must be a g: id"));
  CHECK(contains(bad(parse_members(
                   R"({"t":"group_add","conv":"dm:alice:bob","members":[]})"_json)),
                 "malformed conv"));
  CHECK(bad(parse_members(R"({"t":"group_add","conv":"g:team"})"_json))
        == "missing field 'members'");
  CHECK(bad(parse_members(R"({"t":"group_add","conv":"g:team","members":"bob"})"_json))
        == "field 'members' must be an array");
  CHECK(bad(parse_members(R"({"t":"group_add","conv":"g:team","members":["bob",7]})"_json))
        == "field 'members[1]' must be a string");
  CHECK(bad(parse_members(R"({"t":"group_add","conv":"g:team","members":["b b"]})"_json))
        == "malformed user in 'members[0]'");
  json big{{"t", "group_create"}, {"conv", "g:big"}, {"members", json::array()}};
  for (size_t i = 0; i < max_members; ++i)
    big["members"].push_back("u" + std::to_string(i));
  CHECK(bad(parse_members(big)) == "<ok>");
  big["members"].push_back("one-too-many");
  CHECK(bad(parse_members(big)) == "field 'members' must have 0..10000 elements");
}

TEST_CASE("parse_presence_sub") {
  auto p = parse_presence_sub(R"({"t":"presence_sub","users":["bob","carol"]})"_json);
  REQUIRE(p);
  CHECK(p->users == std::vector<std::string>{"bob", "carol"});
  CHECK(bad(parse_presence_sub(R"({"t":"presence_sub"})"_json)) == "missing field 'users'");
  CHECK(bad(parse_presence_sub(R"({"t":"presence_sub","users":{}})"_json))
        == "field 'users' must be an array");
  CHECK(bad(parse_presence_sub(R"({"t":"presence_sub","users":[""]})"_json))
        == "malformed user in 'users[0]'");
}

// ---- builders ---------------------------------------------------------------------

TEST_CASE("auth_ok, ok, pong and error frames") {
  CHECK(auth_ok_frame(1, "alice", "phone", 57, "n1")
        == R"({"t":"auth_ok","req":1,"user":"alice","device":"phone","iseq":57,"node":"n1"})"_json);
  CHECK(auth_ok_frame(std::nullopt, "alice", "phone", 0, "n1")
        == R"({"t":"auth_ok","user":"alice","device":"phone","iseq":0,"node":"n1"})"_json);
  CHECK(ok_frame(8) == R"({"t":"ok","req":8})"_json);
  CHECK(ok_frame(std::nullopt) == R"({"t":"ok"})"_json);
  CHECK(pong_frame(std::nullopt) == R"({"t":"pong"})"_json);
  CHECK(pong_frame(-4) == R"({"t":"pong","req":-4})"_json);
  CHECK(error_frame(3, errc::forbidden, "not a member")
        == R"({"t":"error","req":3,"code":"forbidden","msg":"not a member"})"_json);
  CHECK(error_frame(std::nullopt, errc::bad_frame, "x")
        == R"({"t":"error","code":"bad_frame","msg":"x"})"_json);
}

TEST_CASE("ack frames: mid as a decimal string, dup only when true") {
  for (auto enc : {encoding::json, encoding::msgpack}) {
    auto a = decoded(encode_ack(2, "c-1", "dm:alice:bob", 42, 18446744073709551615ull,
                                1763800000123, false, enc), enc);
    CHECK(a == R"({"t":"ack","req":2,"cmid":"c-1","conv":"dm:alice:bob","seq":42,
                   "mid":"18446744073709551615","ts":1763800000123})"_json);
    CHECK(a["ts"].is_number_integer());
    auto dup = decoded(encode_ack(std::nullopt, "c-1", "dm:alice:bob", 42, 7, 1, true, enc), enc);
    CHECK(dup == R"({"t":"ack","cmid":"c-1","conv":"dm:alice:bob","seq":42,"mid":"7","ts":1,
                     "dup":true})"_json);
  }

  auto b = ack_batch_frame(3, "g:team", 43, 45, {10, 11, 12}, false);
  CHECK(b == R"({"t":"ack_batch","req":3,"conv":"g:team","first_seq":43,"last_seq":45,
                 "mids":["10","11","12"]})"_json);
  CHECK(ack_batch_frame(std::nullopt, "g:team", 43, 43, {10}, true)
        == R"({"t":"ack_batch","conv":"g:team","first_seq":43,"last_seq":43,"mids":["10"],
               "dup":true})"_json);
}

TEST_CASE("msg_frame: iseq and prio only when set, ex as an object") {
  auto m = sample_message();
  CHECK(msg_frame(m, 58) == R"({"t":"msg","iseq":58,"conv":"dm:alice:bob","seq":42,
        "mid":"7301234567890123456","from":"alice","device":"phone","type":"text",
        "body":"hi","ex":{"reply_to":"41","tags":["a"]},"ts":1763800000123})"_json);
  auto timeline = msg_frame(m, std::nullopt);
  CHECK_FALSE(timeline.contains("iseq"));
  CHECK_FALSE(timeline.contains("prio"));
  CHECK_FALSE(timeline.contains("cmid"));
  m.prio = 1;
  CHECK(msg_frame(m, std::nullopt)["prio"] == 1);
  for (auto ex : {"", "not json", "[1,2]", "{\"a\":"}) {
    CAPTURE(ex);
    m.ex = ex;
    CHECK(msg_frame(m, 1)["ex"] == json::object());
  }
}

TEST_CASE("msg_frame: mentions, recalled and edited only when set") {
  auto m = sample_message();
  auto plain = msg_frame(m, 1);
  CHECK_FALSE(plain.contains("mentions"));
  CHECK_FALSE(plain.contains("recalled"));
  CHECK_FALSE(plain.contains("edited"));
  m.mentions = {"bob"};
  m.edited = 1763800000200;
  m.edits = {43};
  auto edited = msg_frame(m, 1);
  CHECK(edited["mentions"] == json::array({"bob"}));
  CHECK(edited["edited"] == 1763800000200);
  CHECK_FALSE(edited.contains("edits"));
  m.recalled_by = 44;
  CHECK(msg_frame(m, 1)["recalled"] == true);
  CHECK(mention_frame("g:big", 9, "alice")
        == R"({"t":"mention","conv":"g:big","seq":9,"from":"alice"})"_json);
  CHECK(ok_frame(3, 43) == R"({"t":"ok","req":3,"seq":43})"_json);
}

TEST_CASE("sync_result and history_result carry msg frames") {
  auto m1 = sample_message();
  auto m2 = sample_message();
  m2.seq = 43;
  m2.body = "again";
  auto s = sync_result_frame(4, {{58, m1}, {59, m2}}, true);
  CHECK(s["t"] == "sync_result");
  CHECK(s["req"] == 4);
  CHECK(s["more"] == true);
  REQUIRE(s["msgs"].size() == 2);
  CHECK(s["msgs"][0] == msg_frame(m1, 58));
  CHECK(s["msgs"][1] == msg_frame(m2, 59));
  CHECK(sync_result_frame(std::nullopt, {}, false)
        == R"({"t":"sync_result","msgs":[],"more":false})"_json);

  auto h = history_result_frame(5, "dm:alice:bob", {m1, m2}, false);
  CHECK(h["t"] == "history_result");
  CHECK(h["req"] == 5);
  CHECK(h["conv"] == "dm:alice:bob");
  CHECK(h["more"] == false);
  REQUIRE(h["msgs"].size() == 2);
  CHECK(h["msgs"][1] == msg_frame(m2, std::nullopt));
  CHECK_FALSE(h["msgs"][0].contains("iseq"));
}

TEST_CASE("every builder survives JSON and msgpack round trips unchanged") {
  auto m = sample_message();
  m.prio = 1;
  m.body = "h\xc3\xa9llo \"quoted\" \\ \n";
  check_round_trip(auth_ok_frame(1, "alice", "phone", 57, "n1"));
  check_round_trip(ack_batch_frame(-1, "g:team", 43, 45, {1, 2, 3}, false));
  check_round_trip(msg_frame(m, 58));
  check_round_trip(msg_frame(m, std::nullopt));
  check_round_trip(sync_result_frame(4, {{58, m}, {59, sample_message()}}, true));
  check_round_trip(history_result_frame(std::nullopt, "g:team", {m}, false));
  check_round_trip(ok_frame(9));
  check_round_trip(pong_frame(std::nullopt));
  check_round_trip(error_frame(std::numeric_limits<int64_t>::max(), errc::storage, "disk"));
}

TEST_CASE("a msgpack client's frame parses exactly like the JSON one") {
  auto text = R"({"t":"send","req":2,"cmid":"c-1","conv":"dm:alice:bob","type":"text",
                  "body":"hi","ex":{"n":-1,"f":1.5},"prio":1})";
  auto from_json = decoded(text, encoding::json);
  auto from_msgpack = decoded(encode_frame(json::parse(text), encoding::msgpack),
                              encoding::msgpack);
  CHECK(from_json == from_msgpack);
  auto a = parse_send(from_json);
  auto b = parse_send(from_msgpack);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->conv == b->conv);
  CHECK(a->item.cmid == b->item.cmid);
  CHECK(a->item.ex == b->item.ex);
  CHECK(a->item.prio == 1);
  CHECK(b->item.prio == 1);
  CHECK(request_id(from_msgpack) == 2);
}

TEST_CASE("random bytes and mutated frames never throw") {
  std::mt19937 rng(20240101);
  auto seed = encode_frame(R"({"t":"send_batch","req":1,"conv":"g:t","msgs":[
    {"cmid":"a","body":"x","ex":{"k":[1,2.5,null]},"prio":1}],"after":3,"users":["u"]})"_json,
                           encoding::msgpack);
  size_t decoded_ok = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes;
    if (round % 2) {
      bytes.resize(rng() % 200);
      for (auto& c : bytes)
        c = static_cast<char>(rng());
    } else {   // flip a few bytes of a valid frame: reaches deeper code paths
      bytes = seed;
      for (int i = 0; i < 3; ++i)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    for (auto enc : {encoding::json, encoding::msgpack}) {
      auto f = decode_frame(bytes, enc);
      if (!f)
        continue;
      ++decoded_ok;
      request_id(*f);
      parse_auth(*f);
      parse_send(*f);
      parse_send_batch(*f);
      parse_ack(*f);
      parse_sync(*f);
      parse_history(*f);
      parse_read(*f);
      parse_conv_req(*f);
      parse_members(*f);
      parse_presence_sub(*f);
      encode_frame(*f, encoding::json);
      encode_frame(*f, encoding::msgpack);
    }
  }
  // no exception escaped (doctest would fail the case) and mutation kept
  // some frames decodable, so the parsers really ran
  CHECK(decoded_ok > 100);
}
