// The store's limits through the real binary: the LMDB map grows by
// itself when full, and a full disk (a file size limit on the engine)
// answers senders `storage`, keeps serving reads, and loses nothing acked.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

const std::string body(8000, 'x');

// Every message of `conv` by its seq, checked gapless from 1.
std::map<uint64_t, std::string> timeline(imengine::net::ws_client& c, const std::string& conv) {
  std::map<uint64_t, std::string> by_seq;
  for (const auto& m : whole_history(c, conv)) {
    auto seq = m["seq"].get<uint64_t>();
    CHECK(by_seq.emplace(seq, m["mid"].get<std::string>()).second);
  }
  uint64_t expect = 1;
  for (const auto& entry : by_seq)
    CHECK(entry.first == expect++);
  return by_seq;
}

} // namespace

TEST_CASE("a full LMDB map grows by itself; nothing is refused") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--map-size-mb=1"});
  auto alice = engine.login("alice", "phone");
  // 300 x 8 KB, plus inbox copies: several times the 1 MiB map.
  for (int i = 1; i <= 300; ++i) {
    auto a = alice->request(send_frame("dm:alice:bob", "c" + std::to_string(i), body));
    REQUIRE(a["t"] == "ack");
    CHECK(a["seq"] == i);
  }
  CHECK(metric(engine.port(), "imengine_map_grows_total").value_or(0) >= 1);
  auto bob = engine.login("bob", "web");
  CHECK(timeline(*bob, "dm:alice:bob").size() == 300);
  CHECK(inbox_of_at_least(*bob, 300).size() == 300);
  // The data file is larger than --map-size-mb now; a restart opens it.
  engine.restart();
  auto again = engine.login("bob", "web2");
  CHECK(timeline(*again, "dm:alice:bob").size() == 300);
}

TEST_CASE("a full disk: senders get storage, reads go on, every ack survives") {
  temp_dir dir;
  engine_process engine(dir.str());
  std::map<uint64_t, std::string> acked;   // seq -> mid
  {
    auto alice = engine.login("alice", "phone");
    auto first = alice->request(send_frame("dm:alice:bob", "c0", "before"));
    REQUIRE(first["t"] == "ack");
    acked.emplace(1, first["mid"].get<std::string>());
  }
  engine.limit_file_size(2 << 20);
  engine.restart();
  auto alice = engine.login("alice", "phone");
  auto carol = engine.login("carol", "phone");
  json refusal;
  for (int i = 1; i <= 2000 && refusal.is_null(); ++i) {
    auto cmid = "c" + std::to_string(i);
    auto a = alice->request(send_frame("dm:alice:bob", cmid, body));
    if (a["t"] == "ack")
      acked.emplace(a["seq"].get<uint64_t>(), a["mid"].get<std::string>());
    else
      refusal = a;
  }
  REQUIRE_FALSE(refusal.is_null());
  CAPTURE(refusal);
  CHECK(refusal["code"] == "storage");
  CHECK_FALSE(refusal.value("msg", "").empty());
  // Another sender hears the same cause, or fits in pages the failed
  // commit left free; never `internal`.
  auto other = carol->request(send_frame("dm:carol:dave", "d1", body));
  CAPTURE(other);
  CHECK((other["t"] == "ack" || other["code"] == "storage"));
  // Reads are served from what was committed.
  auto bob = engine.login("bob", "web");
  auto seen = timeline(*bob, "dm:alice:bob");
  for (const auto& [seq, mid] : acked)
    CHECK(seen[seq] == mid);
  CHECK(metric(engine.port(), "imengine_commit_errors_total").value_or(0) >= 1);
  // Space again (the limit goes with the process): every acked message is
  // there once, at its seq, and the conversation goes on gapless.
  engine.limit_file_size(0);
  engine.restart();
  auto reader = engine.login("bob", "web2");
  auto after = timeline(*reader, "dm:alice:bob");
  for (const auto& [seq, mid] : acked)
    CHECK(after[seq] == mid);
  auto sender = engine.login("alice", "phone");
  auto next = sender->request(send_frame("dm:alice:bob", "next", "after"));
  REQUIRE(next["t"] == "ack");
  CHECK(next["seq"] == after.size() + 1);
  auto inbox = inbox_of_at_least(*reader, after.size() + 1);
  CHECK(inbox.size() == after.size() + 1);
}
