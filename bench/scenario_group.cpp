// group: one group of M members, all online; K of them send with a window.
// Every member's device must get every committed message exactly once, in
// seq order. --mode=inbox: write diffusion (pushes with iseq, acked);
// --mode=timeline: read diffusion (the engine's --large-group below M),
// pushes without iseq, a `notify`-announced gap pulled with `history`.
#include <algorithm>

#include "bench/scenarios.hpp"
#include "bench/stats.hpp"

namespace imbench {

using namespace std::chrono_literals;

json run_group(run_context& ctx) {
  const auto members = ctx.opts.num("members", 100);
  const auto senders_n = ctx.opts.num("senders", 1);
  const auto window = static_cast<unsigned>(ctx.opts.num("window", 10));
  const auto size = ctx.opts.num("size", 100);
  const auto count = ctx.opts.num("count", 1000);
  const auto duration = std::chrono::duration<double>(ctx.opts.real("duration", 30));
  const auto grace = std::chrono::duration<double>(ctx.opts.real("grace", 5));
  const auto mode = ctx.opts.str("mode", "inbox");
  const auto concurrency = static_cast<unsigned>(ctx.opts.num("connect-concurrency", 100));
  ctx.opts.check_all_used();
  if ((mode != "inbox" && mode != "timeline") || members < 2 || senders_n < 1 ||
      senders_n > members)
    throw std::invalid_argument(
      "group needs --mode=inbox|timeline, --members>=2, 1<=--senders<=--members");
  json params{{"members", members}, {"senders", senders_n}, {"window", window}, {"size", size},
              {"count", count}, {"duration_s", duration.count()}, {"mode", mode}};
  const auto to_d = [](auto d) { return std::chrono::duration_cast<bench_clock::duration>(d); };

  totals t;
  io_pool pool(ctx.threads);
  monitor mon("group", t);
  fleet conns(pool, t, ctx.base, concurrency);
  const auto conv = "g:" + ctx.run_id;
  json names = json::array();
  for (uint64_t i = 0; i < members; ++i) {
    auto user = "g" + ctx.run_id + "-" + std::to_string(i);
    conns.add(user, "d");
    if (i > 0)
      names.push_back(user);
  }
  bool ok = conns.open_all(mon, 60s) == members;

  // The owner (member 0) creates the group; its system message reaches
  // every member before the load starts, then the counters restart.
  auto owner = conns.all()[0];
  std::atomic<int> created{0};   // 1 ok, -1 refused
  // The mode the engine chose (group_info), so a run never measures the
  // other diffusion by mistake.
  auto engine_mode = std::make_shared<std::string>();
  std::atomic<bool> got_info{false};
  if (ok) {
    owner->post([&, owner, engine_mode] {
      auto req = owner->next_req();
      auto info_req = owner->next_req();
      owner->on_frame = [&created, &got_info, engine_mode, conv, req, info_req](connection& c,
                                                                           const json& f) {
        auto r = f.value("req", uint64_t{0});
        if (r == req) {
          created = f.value("t", std::string()) == "ok" ? 1 : -1;
          // Only once created: group_info sees committed membership.
          if (created == 1)
            c.send({{"t", "group_info"}, {"req", info_req}, {"conv", conv}});
        }
        if (r == info_req) {
          *engine_mode = f.value("mode", std::string("?"));
          got_info = true;
        }
      };
      owner->send({{"t", "group_create"}, {"req", req}, {"conv", conv}, {"members", names}});
    });
    ok = mon.wait_until([&] {
      return created == -1 || (created == 1 && got_info && t.delivered + t.echoed >= members);
    }, 30s) && created == 1;
  }
  bool right_mode = ok && *engine_mode == mode;
  ok = ok && right_mode;
  t.delivered = 0;
  t.echoed = 0;
  t.notified = 0;

  cpu_probe cpu(ctx.server_pid);
  auto start = bench_clock::now();
  std::vector<std::unique_ptr<sender>> senders;
  if (ok)
    senders = start_senders(conns.all(), senders_n,
                            send_plan{conv, count, start + to_d(duration), window, size, "g"}, t);
  bool finished = ok && wait_senders(mon, senders, to_d(duration) + 30s);
  auto load_end = bench_clock::now();
  // Grace: every copy arrived, or (timeline) a notify announced it held
  // back (never pushed then: pulled).
  auto end = end_run(conns, pool, mon, t, t.acked * members, conv, senders, finished,
                     mode == "timeline", to_d(grace));
  const auto& committed = end.committed;
  const auto& pull = end.pull;

  auto out = base_summary("group", params, t, conns);
  uint64_t lost = 0;
  for (auto& c : conns.all())
    lost += c->missing(conv, committed);
  out["lost"] = lost;
  out["expected_deliveries"] = t.acked * (members - 1);
  out["engine_mode"] = *engine_mode;
  if (mode == "timeline") {
    out["notified"] = t.notified.load();
    out["pulled"] = t.pulled.load();
    out["pull"] = {{"members", pull.members}, {"requests", pull.requests},
                   {"complete", pull.complete}};
  }
  auto load_s = std::chrono::duration<double>(load_end - start).count();
  auto deliver_s = std::chrono::duration<double>(std::max(conns.last_push(), start) - start).count();
  out["elapsed_s"] = load_s;
  // Live pushes only: history pulls count in `delivered`, not in the rate.
  auto delivered_live = t.delivered - t.pulled;
  out["throughput"] = {{"msgs_per_s", load_s > 0 ? t.acked / load_s : 0.0},
                       {"deliveries_per_s", deliver_s > 0 ? delivered_live / deliver_s : 0.0}};
  auto delivery_us = conns.delivery_us();
  out["latency_ms"] = {{"ack", latency_summary(end.ack_us)}, {"delivery", latency_summary(delivery_us)}};
  json server = json::object();
  cpu.report(server, t.acked);
  out["server"] = server;
  out["ok"] = ok && finished && pull.complete;
  if (!ok && got_info && !right_mode)
    out["failure"] = "the engine put the group in " + *engine_mode + " mode, not " + mode +
                     ": its --large-group must be below --members for timeline, at or above for inbox";
  else if (!ok)
    out["failure"] = "connections or group_create did not complete";
  else if (!finished)
    out["failure"] = "senders did not finish in time";
  else if (!pull.complete)
    out["failure"] = "history pulls of notified gaps did not finish in time";
  return out;
}

} // namespace imbench
