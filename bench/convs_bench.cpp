// imconvsbench: what a `convs` page costs (docs/BENCHMARKS.md, "The
// conversation list"). Fills a spawned engine through the server API: the
// user `probe` in --convs dms with --messages messages each (peers write
// them), plus --rooms rooms it joined; then asks `convs` over one
// WebSocket: the first page --reps times, and the whole list paged. The
// engine's CPU per first page comes from /proc. Bounded by the counts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/options.hpp"
#include "bench/spawn.hpp"
#include "bench/stats.hpp"
#include "net/ws_client.hpp"
#include "tests/support/http_client.hpp"

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using imengine::testing::bearer;
using imengine::testing::http_client;

const char* usage =
  "usage: imconvsbench --spawn=PATH [--convs=1000] [--messages=1] [--rooms=0]\n"
  "                    [--limit=50] [--reps=200]\n"
  "exit: 0 ok, 1 the list is wrong, 2 run failed, 64 usage\n";

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}


std::string peer_name(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "p%05llu", static_cast<unsigned long long>(i));
  return buf;
}

} // namespace

int main(int argc, char** argv) {
  try {
    imbench::options opt(argc, argv, 1);
    auto spawn = opt.str("spawn", "");
    auto convs = opt.num("convs", 1000);
    auto messages = opt.num("messages", 1);
    auto rooms = opt.num("rooms", 0);
    auto limit = opt.num("limit", 50);
    auto reps = opt.num("reps", 200);
    opt.check_all_used();
    if (spawn.empty() || convs == 0 || messages == 0 || limit == 0 || reps == 0) {
      std::fputs(usage, stderr);
      return 64;
    }
    const std::string key = "imconvsbench-key";
    imbench::engine_child engine(spawn, {"--sync=none", "--api-key=" + key});
    http_client api(engine.port());
    auto headers = bearer(key);
    auto fill_start = clock_type::now();
    for (uint64_t m = 0; m < messages; ++m)
      for (uint64_t c = 0; c < convs; ++c) {
        auto peer = peer_name(c);
        json send{{"from", peer}, {"conv", "dm:" + peer + ":probe"},
                  {"cmid", "f" + std::to_string(m)}, {"body", "message " + std::to_string(m)}};
        auto r = api.request("POST", "/api/v1/messages", send.dump(), headers);
        if (r.status != 200)
          throw std::runtime_error("fill: " + std::to_string(r.status) + " " + r.body);
      }
    imengine::net::ws_client client("127.0.0.1", engine.port());
    auto ok = client.request({{"t", "auth"}, {"user", "probe"}, {"device", "bench"}});
    if (ok.value("t", "") != "auth_ok")
      throw std::runtime_error("auth: " + ok.dump());
    for (uint64_t r = 0; r < rooms; ++r) {
      auto room = "r:room" + std::to_string(r);
      if (client.request({{"t", "join"}, {"conv", room}}).value("t", "") != "ok")
        throw std::runtime_error("join " + room);
    }
    auto fill_s = ms_since(fill_start) / 1000;

    // The first page, again and again.
    std::vector<double> first_ms;
    auto cpu_start = imbench::proc_cpu_seconds(engine.pid());
    for (uint64_t i = 0; i < reps; ++i) {
      auto t0 = clock_type::now();
      auto page = client.request({{"t", "convs"}, {"limit", limit}});
      first_ms.push_back(ms_since(t0));
      if (page.value("t", "") != "convs_result" || page["convs"].size() != std::min(limit, convs + rooms))
        throw std::runtime_error("first page: " + page.dump().substr(0, 300));
    }
    auto cpu_s = imbench::proc_cpu_seconds(engine.pid()) - cpu_start;

    // The whole list, paged; checked: each conversation once, in order.
    std::vector<double> page_ms;
    std::set<std::string> seen;
    bool ordered = true;
    int64_t last_ts = INT64_MAX;
    json frame{{"t", "convs"}, {"limit", limit}};
    auto walk_start = clock_type::now();
    for (uint64_t pages = 0; pages < convs + rooms + 1; ++pages) {
      auto t0 = clock_type::now();
      auto page = client.request(frame);
      page_ms.push_back(ms_since(t0));
      for (auto& row : page["convs"]) {
        seen.insert(row["conv"].get<std::string>());
        auto ts = row["last"]["ts"].get<int64_t>();
        ordered = ordered && ts <= last_ts;
        last_ts = ts;
      }
      if (!page.value("more", false))
        break;
      frame["cursor"] = page["next"];
    }
    auto walk_ms = ms_since(walk_start);
    bool complete = seen.size() == convs + rooms;
    json out{{"scenario", "convs-page"},
             {"convs", convs},
             {"messages_per_conv", messages},
             {"rooms", rooms},
             {"limit", limit},
             {"fill_s", fill_s},
             {"first_page_ms", {{"p50", imbench::percentile(first_ms, 0.5)},
                                {"p99", imbench::percentile(first_ms, 0.99)}}},
             {"engine_cpu_us_per_first_page", cpu_s * 1e6 / static_cast<double>(reps)},
             {"pages", page_ms.size()},
             {"page_ms", {{"p50", imbench::percentile(page_ms, 0.5)}, {"p99", imbench::percentile(page_ms, 0.99)}}},
             {"whole_list_ms", walk_ms},
             {"listed", seen.size()},
             {"complete", complete},
             {"ordered", ordered}};
    std::cout << out.dump(2) << std::endl;
    engine.stop();
    return complete && ordered ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "imconvsbench: " << e.what() << "\n";
    return 2;
  }
}
