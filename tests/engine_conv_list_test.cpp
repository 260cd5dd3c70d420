// The conversation list's order, cursor and the merge of every node's page.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine/base64url.hpp"
#include "engine/conv_list.hpp"
#include "engine/frame.hpp"

using namespace imengine;

namespace {

conv_summary row(int64_t ts, std::string conv) {
  conv_summary s;
  s.at = {ts, std::move(conv)};
  s.last_seq = 3;
  s.read_seq = 1;
  s.last.seq = 3;
  s.last.mid = 99;
  s.last.from = "bob";
  s.last.body = "b";
  s.last.ts = ts;
  return s;
}

std::vector<std::string> names(const conv_page& p) {
  std::vector<std::string> out;
  for (const auto& r : p.rows)
    out.push_back(r.at.conv);
  return out;
}

} // namespace

TEST_CASE("the list order: most recent first, equal ts by conv descending") {
  CHECK(list_before({20, "dm:a:b"}, {10, "g:x"}));
  CHECK_FALSE(list_before({10, "g:x"}, {20, "dm:a:b"}));
  CHECK(list_before({10, "g:x"}, {10, "dm:a:b"}));
  CHECK_FALSE(list_before({10, "g:x"}, {10, "g:x"}));
}

TEST_CASE("a cursor comes back as the position it was made from; anything else is refused") {
  list_position p{1763800000999, "dm:alice:bob"};
  auto back = decode_cursor(encode_cursor(p));
  REQUIRE(back);
  CHECK(back->ts == p.ts);
  CHECK(back->conv == p.conv);
  CHECK_FALSE(decode_cursor(""));
  CHECK_FALSE(decode_cursor("!!"));
  CHECK_FALSE(decode_cursor(b64url_encode("12")));              // no conv
  CHECK_FALSE(decode_cursor(b64url_encode(":g:x")));            // no ts
  CHECK_FALSE(decode_cursor(b64url_encode("-5:g:x")));          // negative
  CHECK_FALSE(decode_cursor(b64url_encode("12x:g:x")));
  CHECK_FALSE(decode_cursor(b64url_encode("12:nope")));         // not a conv id
  CHECK_FALSE(decode_cursor(b64url_encode("99999999999999999999999:g:x")));
}

TEST_CASE("merge_pages: the first `limit` rows of every node's page, in list order") {
  conv_page n1{{row(50, "dm:a:b"), row(30, "g:x")}, true};
  conv_page n2{{row(40, "r:y"), row(30, "r:z")}, false};
  conv_page n3{};
  auto p = merge_pages({n1, n2, n3}, 3);
  CHECK(names(p) == std::vector<std::string>{"dm:a:b", "r:y", "r:z"});
  CHECK(p.more);
  p = merge_pages({n2, n3}, 5);
  CHECK(names(p) == std::vector<std::string>{"r:y", "r:z"});
  CHECK_FALSE(p.more);
  CHECK(merge_pages({}, 5).rows.empty());
}

TEST_CASE("convs and mute frames: parsed with their errors; convs_result as the contract shows it") {
  auto ok = parse_convs({{"t", "convs"}});
  REQUIRE(ok);
  CHECK(ok->limit == 50);
  CHECK_FALSE(ok->after);
  CHECK(parse_convs({{"t", "convs"}, {"limit", 100000}})->limit == max_convs_page);
  CHECK(parse_convs({{"t", "convs"}, {"limit", 0}})->limit == 1);
  auto cur = parse_convs({{"t", "convs"}, {"cursor", encode_cursor({7, "g:x"})}});
  REQUIRE(cur);
  REQUIRE(cur->after);
  CHECK(cur->after->conv == "g:x");
  CHECK(parse_convs({{"t", "convs"}, {"cursor", "x"}}).error().code == errc::bad_frame);
  CHECK(parse_convs({{"t", "convs"}, {"cursor", 1}}).error().code == errc::bad_frame);
  CHECK(parse_convs({{"t", "convs"}, {"limit", 1.5}}).error().code == errc::bad_frame);

  auto m = parse_mute({{"t", "mute"}, {"conv", "g:x"}, {"on", true}});
  REQUIRE(m);
  CHECK(m->on);
  CHECK(parse_mute({{"t", "mute"}, {"conv", "g:x"}, {"on", 1}}).error().code == errc::bad_frame);
  CHECK(parse_mute({{"t", "mute"}, {"conv", "g:x"}}).error().code == errc::bad_frame);
  CHECK(parse_mute({{"t", "mute"}, {"on", false}}).error().code == errc::bad_frame);

  auto f = convs_result_frame(20, {row(50, "g:x")}, true);
  CHECK(f["t"] == "convs_result");
  CHECK(f["req"] == 20);
  CHECK(f["more"] == true);
  CHECK(decode_cursor(f["next"].get<std::string>())->conv == "g:x");
  CHECK(f["convs"][0] == json{{"conv", "g:x"}, {"kind", "group"}, {"last_seq", 3},
                              {"read_seq", 1}, {"unread", 2}, {"mentions", 0}, {"muted", false},
                              {"last", {{"seq", 3}, {"mid", "99"}, {"from", "bob"},
                                        {"type", "text"}, {"body", "b"}, {"ts", 50}}}});
  auto last_page = convs_result_frame(21, {row(50, "r:y")}, false);
  CHECK_FALSE(last_page.contains("next"));
  CHECK(last_page["convs"][0]["kind"] == "room");
  CHECK(mute_frame("g:x", true) == json{{"t", "mute"}, {"conv", "g:x"}, {"on", true}});
}
