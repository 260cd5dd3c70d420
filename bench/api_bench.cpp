// imapibench: server API sends per second (docs/BENCHMARKS.md, "Server
// API (issue 8)"). --conns keep-alive HTTP connections, one thread each,
// POST /api/v1/messages one after another (each waits for its 200, which
// comes after the commit); bounded by --count per connection and
// --duration seconds. Afterwards every committed message is checked in
// the API's history: exactly once, at the seq its answer named.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/options.hpp"
#include "bench/spawn.hpp"
#include "bench/stats.hpp"
#include "tests/support/http_client.hpp"

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using imengine::testing::bearer;
using imengine::testing::http_client;

const char* usage =
  "usage: imapibench [--spawn=PATH [--sync=full|none] | --port=N --key=KEY]\n"
  "                  [--conns=4] [--count=1000] [--duration=5] [--size=100]\n"
  "                  [--convs=distinct|one]\n"
  "distinct: connection i sends as u<i> into dm:u<i>:v<i>; one: every connection\n"
  "sends into dm:u0:v0 (as u0 and v0 alternately). exit: 0 ok, 1 lost or\n"
  "duplicated, 2 run failed, 64 usage\n";

struct worker_result {
  std::vector<double> latency_ms;
  std::vector<std::pair<std::string, uint64_t>> acked;   // conv, seq
  uint64_t errors = 0;
  std::string first_error;
};


} // namespace

int main(int argc, char** argv) {
  try {
    imbench::options opt(argc, argv, 1);
    auto spawn = opt.str("spawn", "");
    auto sync = opt.str("sync", "full");
    auto conns = static_cast<unsigned>(opt.num("conns", 4));
    auto count = opt.num("count", 1000);
    auto duration = std::chrono::duration<double>(opt.real("duration", 5));
    auto size = opt.num("size", 100);
    auto convs = opt.str("convs", "distinct");
    auto key = opt.str("key", spawn.empty() ? "" : "imapibench-key");
    uint16_t port = static_cast<uint16_t>(opt.num("port", 0));
    opt.check_all_used();
    if ((spawn.empty() && (port == 0 || key.empty())) || conns == 0 || count == 0
        || (convs != "distinct" && convs != "one")) {
      std::fputs(usage, stderr);
      return 64;
    }
    std::unique_ptr<imbench::engine_child> engine;
    if (!spawn.empty()) {
      engine = std::make_unique<imbench::engine_child>(
        spawn, std::vector<std::string>{"--sync=" + sync, "--api-key=" + key});
      port = engine->port();
    }
    const std::string body(size, 'x');
    std::vector<worker_result> results(conns);
    std::atomic<bool> stop{false};
    auto start = clock_type::now();
    auto until = start + std::chrono::duration_cast<clock_type::duration>(duration);
    std::vector<std::thread> threads;
    for (unsigned w = 0; w < conns; ++w)
      threads.emplace_back([&, w] {
        auto& r = results[w];
        try {
          http_client c(port);
          auto headers = bearer(key);
          for (uint64_t i = 0; i < count && !stop && clock_type::now() < until; ++i) {
            auto self = convs == "one" ? std::string(w % 2 ? "v0" : "u0") : "u" + std::to_string(w);
            auto conv = convs == "one" ? std::string("dm:u0:v0")
                                       : "dm:u" + std::to_string(w) + ":v" + std::to_string(w);
            json send{{"from", self}, {"conv", conv},
                      {"cmid", "b" + std::to_string(w) + "-" + std::to_string(i)},
                      {"body", body}};
            auto t0 = clock_type::now();
            auto res = c.request("POST", "/api/v1/messages", send.dump(), headers);
            auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
            if (res.status != 200) {
              if (r.errors++ == 0)
                r.first_error = std::to_string(res.status) + " " + res.body;
              continue;
            }
            r.latency_ms.push_back(ms);
            r.acked.emplace_back(conv, res.json()["seq"].get<uint64_t>());
          }
        } catch (const std::exception& e) {
          r.errors++;
          r.first_error = e.what();
        }
      });
    for (auto& t : threads)
      t.join();
    auto seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    // Every acked seq exactly once in its conversation's history.
    std::map<std::string, std::vector<uint64_t>> expected;
    std::vector<double> all;
    uint64_t errors = 0, sends = 0;
    std::string first_error;
    for (auto& r : results) {
      for (auto& [conv, seq] : r.acked)
        expected[conv].push_back(seq);
      all.insert(all.end(), r.latency_ms.begin(), r.latency_ms.end());
      sends += r.acked.size();
      errors += r.errors;
      if (first_error.empty())
        first_error = r.first_error;
    }
    uint64_t lost = 0, duplicated = 0;
    http_client check(port);
    for (auto& [conv, seqs] : expected) {
      std::map<uint64_t, int> seen;   // seq -> times listed
      uint64_t after = 0;
      while (true) {
        auto page = check.request("GET", "/api/v1/conversations/" + conv + "/messages?after="
                                           + std::to_string(after) + "&limit=1000",
                                  {}, bearer(key))
                      .json();
        for (auto& m : page["msgs"])
          seen[after = m["seq"].get<uint64_t>()]++;
        if (!page.value("more", false))
          break;
      }
      for (auto s : seqs)
        if (seen[s] == 0)
          lost++;
      // A seq is one key in the store: a message committed twice shows
      // as more messages than answers.
      if (seen.size() > seqs.size())
        duplicated += seen.size() - seqs.size();
    }
    json out{{"scenario", "api-send"},
             {"conns", conns},
             {"convs", convs},
             {"sync", spawn.empty() ? "as started" : sync},
             {"size", size},
             {"sends", sends},
             {"errors", errors},
             {"seconds", seconds},
             {"sends_per_s", seconds > 0 ? static_cast<double>(sends) / seconds : 0},
             {"latency_ms",
              {{"p50", imbench::percentile(all, 0.5)}, {"p99", imbench::percentile(all, 0.99)},
               {"max", all.empty() ? 0 : *std::max_element(all.begin(), all.end())}}},
             {"lost", lost},
             {"duplicated", duplicated}};
    if (!first_error.empty())
      out["first_error"] = first_error;
    std::cout << out.dump(2) << std::endl;
    if (engine)
      engine->stop();
    if (lost > 0 || duplicated > 0)
      return 1;
    return errors > 0 ? 2 : 0;
  } catch (const std::exception& e) {
    std::cerr << "imapibench: " << e.what() << "\n";
    return 2;
  }
}
