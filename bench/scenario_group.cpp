// group: one group of M members, all online; K of them send with a window.
// Every member's device must get every committed message exactly once, in
// order (inbox mode: write diffusion).
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
  if (mode == "timeline")
    throw not_available("group --mode=timeline: the engine has no read-diffused groups yet");
  if (mode != "inbox" || members < 2 || senders_n < 1 || senders_n > members)
    throw std::invalid_argument("group needs --mode=inbox, --members>=2, 1<=--senders<=--members");
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
  if (ok) {
    owner->post([&, owner] {
      auto req = owner->next_req();
      owner->on_frame = [&created, req](connection&, const json& f) {
        if (f.value("req", uint64_t{0}) == req)
          created = f.value("t", std::string()) == "ok" ? 1 : -1;
      };
      owner->send({{"t", "group_create"}, {"req", req}, {"conv", conv}, {"members", names}});
    });
    ok = mon.wait_until([&] { return created != 0 && t.delivered + t.echoed >= members; }, 30s) &&
         created == 1;
  }
  t.delivered = 0;
  t.echoed = 0;

  cpu_probe cpu(ctx.server_pid);
  auto start = bench_clock::now();
  std::vector<std::unique_ptr<sender>> senders;
  if (ok) {
    for (uint64_t i = 0; i < senders_n; ++i)
      senders.push_back(std::make_unique<sender>(
        conns.all()[i], send_plan{conv, count, start + to_d(duration), window, size,
                                  "g" + std::to_string(i) + "-"}, t));
    for (auto& s : senders)
      s->start();
  }
  bool finished = ok && mon.wait_until([&] {
    for (auto& s : senders)
      if (!s->done())
        return false;
    return true;
  }, to_d(duration) + 30s);
  auto load_end = bench_clock::now();
  mon.wait_until([&] { return t.delivered >= t.acked * (members - 1) && t.echoed >= t.acked; },
                 to_d(grace));
  conns.close_all();
  pool.stop();

  auto out = base_summary("group", params, t, conns);
  std::vector<uint64_t> committed;
  std::vector<uint32_t> ack_us;
  for (auto& s : senders) {
    committed.insert(committed.end(), s->acked_seqs.begin(), s->acked_seqs.end());
    ack_us.insert(ack_us.end(), s->ack_us.begin(), s->ack_us.end());
  }
  uint64_t lost = 0;
  for (auto& c : conns.all())
    lost += c->missing(conv, committed);
  out["lost"] = lost;
  out["expected_deliveries"] = t.acked * (members - 1);
  auto load_s = std::chrono::duration<double>(load_end - start).count();
  auto deliver_s = std::chrono::duration<double>(std::max(conns.last_push(), start) - start).count();
  out["elapsed_s"] = load_s;
  out["throughput"] = {{"msgs_per_s", load_s > 0 ? t.acked / load_s : 0.0},
                       {"deliveries_per_s", deliver_s > 0 ? t.delivered / deliver_s : 0.0}};
  auto delivery_us = conns.delivery_us();
  out["latency_ms"] = {{"ack", latency_summary(ack_us)}, {"delivery", latency_summary(delivery_us)}};
  json server = json::object();
  cpu.report(server, t.acked);
  out["server"] = server;
  out["ok"] = ok && finished;
  if (!ok)
    out["failure"] = "connections or group_create did not complete";
  else if (!finished)
    out["failure"] = "senders did not finish in time";
  return out;
}

} // namespace imbench
