#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "engine/cluster.hpp"
#include "engine/error.hpp"

using namespace imengine;

namespace {

// The failure message of parse_peers(s), or "OK" if it parsed.
std::string error_of(std::string_view s) {
  auto r = parse_peers(s);
  if (r)
    return "OK";
  CHECK(r.error().code == errc::bad_config);
  return r.error().msg;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<peer> peers_of(std::initializer_list<const char*> names) {
  std::vector<peer> out;
  uint16_t port = 7001;
  for (auto n : names)
    out.push_back(peer{n, "127.0.0.1", port++});
  return out;
}

// 15,000 user-like and 15,000 conv-like keys. The short user ids matter:
// plain FNV-1a (without the finalizer) gives one of three nodes 11 % of
// them and another 71 %.
std::vector<std::string> user_keys() {
  std::vector<std::string> out;
  for (int i = 0; i < 7500; ++i)
    out.push_back("user" + std::to_string(i));
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b)
      for (char c = 'a'; c <= 'z' && out.size() < 15000; ++c)
        out.push_back(std::string{a, b, c});
  return out;
}

std::vector<std::string> conv_keys() {
  std::vector<std::string> out;
  for (int i = 0; i < 5000; ++i)
    out.push_back("dm:u" + std::to_string(i) + ":v" + std::to_string(i));
  for (int i = 0; i < 5000; ++i)
    out.push_back("g:group" + std::to_string(i));
  for (int i = 0; i < 5000; ++i)
    out.push_back("r:" + std::to_string(i * 7919));
  return out;
}

} // namespace

TEST_CASE("parse_peers accepts names, hosts, bracketed IPv6 and the port range") {
  auto r = parse_peers("n1@127.0.0.1:7001,n2@127.0.0.1:7002,n3@127.0.0.1:7003");
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].name == "n1");
  CHECK((*r)[0].host == "127.0.0.1");
  CHECK((*r)[0].port == 7001);
  CHECK((*r)[2].name == "n3");
  CHECK((*r)[2].port == 7003);

  auto v6 = parse_peers("a@[::1]:7001, b@[fe80::1:2]:1,c@[::ffff:10.0.0.1]:65535");
  REQUIRE(v6);
  CHECK((*v6)[0].host == "::1");   // without the brackets
  CHECK((*v6)[0].port == 7001);
  CHECK((*v6)[1].host == "fe80::1:2");
  CHECK((*v6)[1].port == 1);
  CHECK((*v6)[2].host == "::ffff:10.0.0.1");
  CHECK((*v6)[2].port == 65535);

  auto names = parse_peers(std::string(32, 'x') + "@db-1.example.com:80,A_b-9@h:81");
  REQUIRE(names);
  CHECK((*names)[0].name == std::string(32, 'x'));
  CHECK((*names)[0].host == "db-1.example.com");
  CHECK((*names)[1].name == "A_b-9");

  auto spaced = parse_peers("  n1@h1:1 ,\tn2@h2:2\n");
  REQUIRE(spaced);
  REQUIRE(spaced->size() == 2);
  CHECK((*spaced)[0].name == "n1");
  CHECK((*spaced)[1].host == "h2");

  auto one = parse_peers("solo@localhost:7001");
  REQUIRE(one);
  CHECK(one->size() == 1);
}

TEST_CASE("parse_peers: an empty value is an empty list") {
  auto r = parse_peers("");
  REQUIRE(r);
  CHECK(r->empty());
  auto blank = parse_peers(" \t ");
  REQUIRE(blank);
  CHECK(blank->empty());
}

TEST_CASE("parse_peers rejects each malformed entry, naming it and the reason") {
  // Each bad entry is second, after a good one: the message must give its
  // position and text.
  auto bad = [](const std::string& entry) { return error_of("ok@h:1," + entry); };
  auto names = [](const std::string& msg, const std::string& entry, const std::string& why) {
    return contains(msg, "entry 2 '" + entry + "'") && contains(msg, why);
  };
  CHECK(names(bad(""), "", "empty entry"));
  CHECK(names(bad("n2-127.0.0.1:7002"), "n2-127.0.0.1:7002", "missing '@'"));
  CHECK(names(bad("@h:2"), "@h:2", "empty node name"));
  CHECK(names(bad(std::string(33, 'x') + "@h:2"), std::string(33, 'x') + "@h:2",
              "longer than 32"));
  CHECK(names(bad("n.2@h:2"), "n.2@h:2", "[A-Za-z0-9_-]"));
  CHECK(names(bad("n2@:2"), "n2@:2", "empty host"));
  CHECK(names(bad("n2@my host:2"), "n2@my host:2", "whitespace"));
  CHECK(names(bad("n2@a@b:2"), "n2@a@b:2", "host contains '@'"));
  CHECK(names(bad("n2@::1:2"), "n2@::1:2", "must be bracketed"));
  CHECK(names(bad("n2@[::1:2"), "n2@[::1:2", "unclosed '['"));
  CHECK(names(bad("n2@[]:2"), "n2@[]:2", "empty IPv6 host"));
  CHECK(names(bad("n2@[host]:2"), "n2@[host]:2", "bad IPv6 literal"));
  CHECK(names(bad("n2@[::1]"), "n2@[::1]", "missing ':PORT' after ']'"));
  CHECK(names(bad("n2@h"), "n2@h", "missing ':PORT'"));
  CHECK(names(bad("n2@h:"), "n2@h:", "empty port"));
  CHECK(names(bad("n2@h:70x1"), "n2@h:70x1", "not a decimal number"));
  CHECK(names(bad("n2@h:-1"), "n2@h:-1", "not a decimal number"));
  CHECK(names(bad("n2@h:0"), "n2@h:0", "not in 1..65535"));
  CHECK(names(bad("n2@h:65536"), "n2@h:65536", "not in 1..65535"));
  CHECK(names(bad("n2@h:99999999999999999999"), "n2@h:99999999999999999999",
              "not in 1..65535"));
  // A trailing comma is an empty last entry, not silently ignored.
  CHECK(contains(error_of("a@h:1,b@h:2,"), "entry 3 '': empty entry"));
}

TEST_CASE("parse_peers rejects duplicate names and duplicate addresses") {
  auto dup_name = error_of("n1@h:1,n2@h:2,n1@h:3");
  CHECK(contains(dup_name, "entry 3 'n1@h:3'"));
  CHECK(contains(dup_name, "duplicate node name 'n1' (entry 1)"));

  auto dup_addr = error_of("n1@127.0.0.1:7001, n2@127.0.0.1:7001");
  CHECK(contains(dup_addr, "entry 2 'n2@127.0.0.1:7001'"));
  CHECK(contains(dup_addr, "duplicate address 127.0.0.1:7001 (entry 1)"));

  // Host names compare case-insensitively, IPv6 literals too.
  CHECK(contains(error_of("a@Host:1,b@hOST:1"), "duplicate address"));
  CHECK(contains(error_of("a@[::A]:1,b@[::a]:1"), "duplicate address [::a]:1"));
  // Same host, other port, or same port, other host: fine.
  CHECK(error_of("a@h:1,b@h:2,c@g:1") == "OK");
}

TEST_CASE("cluster_map: the node set is the peers plus self, sorted") {
  cluster_map listed{"n2", peers_of({"n3", "n1", "n2"})};
  CHECK(listed.self() == "n2");
  CHECK(listed.nodes() == std::vector<std::string>{"n1", "n2", "n3"});
  CHECK_FALSE(listed.alone());

  cluster_map unlisted{"n2", peers_of({"n3", "n1"})};
  CHECK(unlisted.nodes() == std::vector<std::string>{"n1", "n2", "n3"});

  cluster_map extra{"n9", peers_of({"n1"})};
  CHECK(extra.nodes() == std::vector<std::string>{"n1", "n9"});
}

TEST_CASE("cluster_map: alone without peers (or with only itself), then it owns everything") {
  cluster_map solo{"n1", {}};
  CHECK(solo.alone());
  CHECK(solo.nodes() == std::vector<std::string>{"n1"});
  for (auto k : {"alice", "dm:alice:bob", "g:team", "r:lobby", ""}) {
    CHECK(solo.owner(k) == "n1");
    CHECK(solo.owns(k));
  }
  cluster_map self_only{"n1", peers_of({"n1"})};
  CHECK(self_only.alone());
  CHECK(self_only.owner("bob") == "n1");
}

TEST_CASE("cluster_map: every node computes the same owner, whatever the list order") {
  // Each node of the cluster builds its own map; all must agree.
  std::vector<cluster_map> views{
    cluster_map{"n1", peers_of({"n1", "n2", "n3"})},
    cluster_map{"n2", peers_of({"n3", "n2", "n1"})},
    cluster_map{"n3", peers_of({"n2", "n1"})},   // self not listed
  };
  for (auto& k : user_keys()) {
    auto& o = views[0].owner(k);
    CHECK(views[1].owner(k) == o);
    CHECK(views[2].owner(k) == o);
    // Exactly one view owns it.
    int owners = views[0].owns(k) + views[1].owns(k) + views[2].owns(k);
    CHECK(owners == 1);
  }
  // Same input, same answer (no per-process state).
  cluster_map again{"n1", peers_of({"n2", "n3"})};
  for (auto& k : conv_keys())
    CHECK(again.owner(k) == views[0].owner(k));
}

TEST_CASE("cluster_map: 3 nodes each get 25-42 % of user and conv keys") {
  cluster_map m{"n1", peers_of({"n1", "n2", "n3"})};
  auto users = user_keys();
  auto convs = conv_keys();
  std::map<std::string, int> all, by_users, by_convs;
  for (auto& k : users) {
    ++by_users[m.owner(k)];
    ++all[m.owner(k)];
  }
  for (auto& k : convs) {
    ++by_convs[m.owner(k)];
    ++all[m.owner(k)];
  }
  REQUIRE(users.size() + convs.size() == 30000);
  for (auto& n : m.nodes()) {
    CAPTURE(n);
    CHECK(all[n] >= 7500);       // 25 % of 30,000
    CHECK(all[n] <= 12600);      // 42 %
    CHECK(by_users[n] >= 3750);  // and each kind alone too
    CHECK(by_users[n] <= 6300);
    CHECK(by_convs[n] >= 3750);
    CHECK(by_convs[n] <= 6300);
  }
}

TEST_CASE("cluster_map: removing a node moves only the keys it owned") {
  cluster_map three{"n1", peers_of({"n1", "n2", "n3"})};
  cluster_map two{"n1", peers_of({"n1", "n3"})};
  auto keys = user_keys();
  auto convs = conv_keys();
  keys.insert(keys.end(), convs.begin(), convs.end());
  size_t moved = 0;
  for (auto& k : keys) {
    auto& before = three.owner(k);
    auto& after = two.owner(k);
    if (before == "n2") {
      CHECK(after != "n2");
      ++moved;
    } else {
      CHECK(after == before);
    }
  }
  // n2 owned about a third, and all of those moved.
  CHECK(moved > keys.size() / 4);

  // Same from 4 to 3 nodes, removing one in the middle of the sorted list.
  cluster_map four{"a", peers_of({"a", "b", "c", "d"})};
  cluster_map no_c{"a", peers_of({"a", "b", "d"})};
  for (auto& k : keys)
    if (four.owner(k) != "c")
      CHECK(no_c.owner(k) == four.owner(k));
}

TEST_CASE("cluster_map: golden owners over {n1, n2, n3} (the hash must never change)") {
  // Computed once; this implementation and an independent Python FNV-1a 64
  // + fmix64 agree on them. If these fail, the hash changed: existing data
  // would be stranded on its old owners.
  CHECK(rendezvous_weight("n1", "alice") == 0xdb318dfac0abc067ull);
  CHECK(rendezvous_weight("n1", "") == 0x5dc9f107ae19689dull);
  CHECK(rendezvous_weight("n3", "g:team") == 0xa73f8eafa66c55bcull);
  cluster_map m{"n1", peers_of({"n1", "n2", "n3"})};
  CHECK(m.owner("alice") == "n1");
  CHECK(m.owner("bob") == "n2");
  CHECK(m.owner("erin") == "n3");
  CHECK(m.owner("dm:alice:bob") == "n2");
  CHECK(m.owner("dm:bob:carol") == "n1");
  CHECK(m.owner("g:team") == "n3");
  CHECK(m.owner("g:ops") == "n3");
  CHECK(m.owner("r:lobby") == "n2");
}
