// Heartbeats: the server pings; a silent peer is dropped after two periods
// and what it had not acknowledged waits in the inbox.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

TEST_CASE("a live client is pinged and kept; a silent one is dropped, its messages kept") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--heartbeat-ms=200"});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(wait_metric(engine.port(), "imengine_connections_open 2", 5000ms));
  bob->freeze();   // stops reading: no pongs, no acks
  REQUIRE(alice->request(send_frame("dm:alice:bob", "m1", "are you there?"))["t"] == "ack");
  // bob is dropped within a few periods, alice lives on
  CHECK(wait_metric(engine.port(), "imengine_connections_open 1\n", 5000ms));
  auto until = std::chrono::steady_clock::now() + 5s;
  while (alice->pings_received() < 3 && std::chrono::steady_clock::now() < until)
    alice->next(100ms);
  CHECK(alice->pings_received() >= 3);
  CHECK(alice->request({{"t", "ping"}})["t"] == "pong");
  // the message waits for bob's next sync
  auto bob2 = engine.login("bob", "phone");
  auto page = bob2->request({{"t", "sync"}, {"after", 0}});
  REQUIRE(page["msgs"].size() == 1);
  CHECK(page["msgs"][0]["body"] == "are you there?");
}
