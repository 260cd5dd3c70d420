// Mentions on a send: who is kept, who may mention @all.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>

#include "engine/mentions.hpp"

using namespace imengine;

namespace {

const std::set<std::string> members{"alice", "bob", "carol"};
bool member(const std::string& u) { return members.count(u) > 0; }

} // namespace

TEST_CASE("resolve_mentions keeps members other than the sender, once, in order") {
  auto r = resolve_mentions({"carol", "mallory", "alice", "bob", "carol"}, "alice", false, member);
  REQUIRE(r);
  CHECK(*r == std::vector<std::string>{"carol", "bob"});
  auto none = resolve_mentions({"mallory"}, "alice", false, member);
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("resolve_mentions: @all for those who may, alone; forbidden otherwise") {
  auto r = resolve_mentions({"bob", "@all"}, "alice", true, member);
  REQUIRE(r);
  CHECK(*r == std::vector<std::string>{"@all"});
  auto refused = resolve_mentions({"@all"}, "bob", false, member);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::forbidden);
}

TEST_CASE("mentions_user: by name, or through @all for everyone but its sender") {
  message m;
  m.from = "alice";
  m.mentions = {"bob"};
  CHECK(mentions_user(m, "bob"));
  CHECK_FALSE(mentions_user(m, "carol"));
  m.mentions = {"@all"};
  CHECK(mentions_user(m, "carol"));
  CHECK_FALSE(mentions_user(m, "alice"));
  m.mentions.clear();
  CHECK_FALSE(mentions_user(m, "bob"));
}
