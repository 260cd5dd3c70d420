// The direct encoders must write exactly what the DOM path writes, for
// every kind of content a message can carry.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/frame_writer.hpp"

using namespace imengine;

namespace {

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

void check_msg(const message& m, std::optional<uint64_t> iseq) {
  for (auto enc : {encoding::json, encoding::msgpack}) {
    auto direct = encode_msg(m, iseq, enc);
    auto dom = encode_frame(msg_frame(m, iseq), enc);
    INFO("encoding " << (enc == encoding::json ? "json" : "msgpack") << ", body " << hex(m.body));
    CHECK(hex(direct) == hex(dom));
  }
}

// The ack as a JSON object, built the way every other server frame is: what
// encode_ack must write byte for byte once encoded.
json ack_object(req_id req, const std::string& cmid, const std::string& conv, uint64_t seq,
                uint64_t mid, int64_t ts, bool dup) {
  json f{{"t", "ack"}, {"cmid", cmid}, {"conv", conv}, {"seq", seq},
         {"mid", std::to_string(mid)}, {"ts", ts}};
  if (dup)
    f["dup"] = true;
  if (req)
    f["req"] = *req;
  return f;
}

message sample() {
  message m;
  m.conv = "dm:alice:bob";
  m.seq = 42;
  m.mid = 7234567890123456789ull;
  m.from = "alice";
  m.device = "phone";
  m.cmid = "c-1";
  m.body = "hello";
  m.ts = 1764000000000;
  return m;
}

// Bodies of every length class (fixstr, str8, str16, str32 in msgpack) and
// every escaping class in JSON: quotes, backslashes, control bytes,
// multi-byte UTF-8 and bytes that are not UTF-8 at all.
std::vector<std::string> bodies() {
  std::vector<std::string> out{"", "x", "say \"hi\"\\", "tab\tnew\nline\r\b\f\x01\x1f",
                               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad \xff\xfe utf8 \xc3",
                               "\x7f del", std::string(31, 'a'), std::string(32, 'b'),
                               std::string(255, 'c'), std::string(256, 'd'),
                               std::string(65535, 'e'), std::string(65536, 'f')};
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 300, '\0');
    for (auto& c : s)
      c = static_cast<char>(rng() % 256);
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace

TEST_CASE("encode_msg writes the bytes of encode_frame(msg_frame) for every body") {
  auto m = sample();
  for (const auto& body : bodies()) {
    m.body = body;
    check_msg(m, std::nullopt);
    check_msg(m, uint64_t{3});
  }
}

TEST_CASE("encode_msg: every optional field and integer width") {
  auto m = sample();
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{255},
                     uint64_t{256}, uint64_t{65535}, uint64_t{65536}, uint64_t{4294967295ull},
                     uint64_t{4294967296ull}, std::numeric_limits<uint64_t>::max()}) {
    m.seq = n;
    m.mid = n;
    check_msg(m, n);
  }
  for (int64_t ts : {int64_t{0}, int64_t{-1}, int64_t{-33}, int64_t{-129}, int64_t{-40000},
                     std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    m.ts = ts;
    check_msg(m, std::nullopt);
  }
  m.prio = 1;
  check_msg(m, uint64_t{9});
  m.type = "image";
  m.ex = R"({"w":640,"h":480,"alt":"a \"cat\"","tags":["x","y"],"nested":{"k":null}})";
  check_msg(m, uint64_t{9});
  m.ex = "not json";   // stored text that is not an object reads as {}
  check_msg(m, std::nullopt);
  m.from = "\xff";
  m.conv = "r:room";
  check_msg(m, std::nullopt);
}

TEST_CASE("encode_msg: mentions, recalled and edited in their sorted places") {
  auto m = sample();
  m.mentions = {"bob", "caf\xc3\xa9", "@all"};
  check_msg(m, uint64_t{5});
  m.mentions = {"\xff"};
  m.edited = 1763800000999;
  check_msg(m, std::nullopt);
  m.prio = 1;
  m.recalled_by = 44;
  m.edits = {43};   // storage only: never on the wire
  check_msg(m, uint64_t{6});
  CHECK(encode_msg(m, 6, encoding::json).find("edits") == std::string::npos);
  m.mentions.clear();
  m.edited = 0;
  check_msg(m, std::nullopt);
}

TEST_CASE("encode_ack writes the bytes encode_frame makes of the ack object") {
  for (auto enc : {encoding::json, encoding::msgpack})
    for (req_id req : {req_id{}, req_id{0}, req_id{-5}, req_id{1}, req_id{70000},
                       req_id{std::numeric_limits<int64_t>::max()}})
      for (bool dup : {false, true})
        for (std::string cmid : {std::string("c-1"), std::string("q\"\\\n\xff"), std::string(40, 'z')}) {
          auto direct = encode_ack(req, cmid, "g:team", 12345, 987654321987ull, 1764000000000, dup, enc);
          auto dom = encode_frame(ack_object(req, cmid, "g:team", 12345, 987654321987ull, 1764000000000, dup), enc);
          CHECK(hex(direct) == hex(dom));
        }
}
