// Durability: SIGKILL the engine in the middle of pipelined streams,
// restart it on the same data, and check that every acked message is there
// exactly once with its seq and mid, that seqs have no gaps, that resending
// every cmid answers dup:true for what was committed, and that every inbox
// ends up with every message exactly once.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

struct acked {
  uint64_t seq;
  std::string mid;
};

} // namespace

TEST_CASE("SIGKILL mid-stream loses no acked message and duplicates none") {
  temp_dir dir;
  const std::vector<std::string> senders{"alice", "bob", "carol"};
  auto conv_of = [](const std::string& u) { return "dm:" + u + ":zed"; };   // u < zed
  std::map<std::string, acked> acks;               // cmid -> ack
  std::map<std::string, std::string> sent_conv;    // cmid -> conv, every cmid sent

  // Streams pipelined sends from every sender and SIGKILLs the engine once
  // `kill_after` acks have arrived.
  auto stream_and_kill = [&](int round, size_t kill_after) {
    engine_process engine(dir.str());
    std::vector<std::unique_ptr<imengine::net::ws_client>> clients;
    for (auto& u : senders)
      clients.push_back(engine.login(u, "d"));
    std::mutex mtx;
    std::atomic<size_t> total{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < senders.size(); ++i) {
      // Each sender pipelines up to 32 sends in flight, bounded to 20000,
      // and reads until the connection is gone: acks that reached the
      // client before the kill count, however late they are read.
      threads.emplace_back([&, i] {
        auto& c = *clients[i];
        auto conv = conv_of(senders[i]);
        int next = 0, in_flight = 0;
        while (true) {
          while (in_flight < 32 && next < 20000) {
            auto cmid = senders[i] + "-" + std::to_string(round) + "-" + std::to_string(next++);
            {
              std::lock_guard<std::mutex> g(mtx);
              sent_conv[cmid] = conv;
            }
            c.send(send_frame(conv, cmid, cmid));
            ++in_flight;
          }
          auto f = c.next(5000ms);
          if (!f)
            break;   // closed by the kill, and drained
          if ((*f)["t"] == "ack") {
            --in_flight;
            std::lock_guard<std::mutex> g(mtx);
            acks[(*f)["cmid"].get<std::string>()] =
              acked{(*f)["seq"].get<uint64_t>(), (*f)["mid"].get<std::string>()};
            total++;
          } else if ((*f)["t"] == "msg") {
            c.send({{"t", "ack"}, {"iseq", (*f)["iseq"]}});
          }
        }
      });
    }
    auto until = std::chrono::steady_clock::now() + 30s;
    while (total < kill_after && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);   // poll interval
    engine.kill9();   // mid-stream: sends are still in flight
    for (auto& t : threads)
      t.join();
    REQUIRE(total >= kill_after);
  };

  // Every acked message is in its conversation at its seq with its mid;
  // seqs are gapless and no message is there twice.
  auto verify_acked = [&](imengine::net::ws_client& reader) {
    for (auto& u : senders) {
      auto conv = conv_of(u);
      auto history = whole_history(reader, conv);
      std::set<std::string> seen;
      for (size_t i = 0; i < history.size(); ++i) {
        REQUIRE(history[i]["seq"] == i + 1);
        CHECK(seen.insert(history[i]["body"].get<std::string>()).second);   // body == cmid
      }
      for (auto& [cmid, a] : acks) {
        if (sent_conv[cmid] != conv)
          continue;
        INFO("acked " << cmid << " at seq " << a.seq << ", history has " << history.size());
        REQUIRE(a.seq <= history.size());
        auto& m = history[a.seq - 1];
        CHECK(m["body"] == cmid);
        CHECK(m["mid"] == a.mid);
      }
    }
  };

  // Three kill/restart rounds on the same data: a window between an ack
  // and its commit, if there were one, would have three chances to show.
  for (int round = 0; round < 3; ++round) {
    stream_and_kill(round, 600);
    engine_process engine(dir.str());
    auto zed = engine.login("zed", "d");
    verify_acked(*zed);
  }
  INFO("acked before the kills: " << acks.size() << " of " << sent_conv.size() << " sent");
  REQUIRE(acks.size() >= 1500);

  engine_process engine(dir.str());
  auto zed = engine.login("zed", "d");
  // Resending every cmid: committed ones answer dup:true with the original.
  std::map<std::string, std::unique_ptr<imengine::net::ws_client>> clients;
  for (auto& u : senders)
    clients[u] = engine.login(u, "d2");
  for (auto& [cmid, conv] : sent_conv) {
    auto user = cmid.substr(0, cmid.find('-'));
    auto r = clients[user]->request(send_frame(conv, cmid, cmid));
    REQUIRE(r["t"] == "ack");
    if (auto i = acks.find(cmid); i != acks.end()) {
      CHECK(r["dup"] == true);
      CHECK(r["seq"] == i->second.seq);
      CHECK(r["mid"] == i->second.mid);
    }
  }
  // Now every cmid is in history exactly once, still gapless, and zed's
  // inbox holds every message of the three dms exactly once.
  size_t total = 0;
  for (auto& u : senders) {
    auto history = whole_history(*zed, conv_of(u));
    std::set<std::string> bodies;
    for (size_t i = 0; i < history.size(); ++i) {
      REQUIRE(history[i]["seq"] == i + 1);
      CHECK(bodies.insert(history[i]["body"].get<std::string>()).second);
    }
    total += history.size();
  }
  CHECK(total == sent_conv.size());
  std::vector<json> inbox;
  auto until = std::chrono::steady_clock::now() + 20s;
  do {
    inbox = whole_inbox(*zed);
  } while (inbox.size() < total && std::chrono::steady_clock::now() < until);
  CHECK(inbox.size() == total);
  std::set<std::pair<std::string, uint64_t>> copies;
  for (size_t i = 0; i < inbox.size(); ++i) {
    CHECK(inbox[i]["iseq"] == i + 1);
    CHECK(copies.emplace(inbox[i]["conv"].get<std::string>(), inbox[i]["seq"].get<uint64_t>()).second);
  }
}
