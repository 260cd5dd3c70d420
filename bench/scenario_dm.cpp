// dm: P pairs; each pair's sender keeps W sends in flight to its receiver.
// Every acked message must reach the receiver and the sender's own device
// exactly once, in seq order.
#include "bench/scenarios.hpp"
#include "bench/stats.hpp"

namespace imbench {

using namespace std::chrono_literals;

json run_dm(run_context& ctx) {
  const auto pairs = ctx.opts.num("pairs", 10);
  const auto window = static_cast<unsigned>(ctx.opts.num("window", 10));
  const auto size = ctx.opts.num("size", 100);
  const auto count = ctx.opts.num("count", 1000);
  const auto duration = std::chrono::duration<double>(ctx.opts.real("duration", 30));
  const auto grace = std::chrono::duration<double>(ctx.opts.real("grace", 5));
  const auto concurrency = static_cast<unsigned>(ctx.opts.num("connect-concurrency", 100));
  ctx.opts.check_all_used();
  json params{{"pairs", pairs}, {"window", window}, {"size", size}, {"count", count},
              {"duration_s", duration.count()}, {"grace_s", grace.count()}};

  totals t;
  io_pool pool(ctx.threads);
  monitor mon("dm", t);
  fleet conns(pool, t, ctx.base, concurrency);
  struct pair {
    std::string conv;
    std::shared_ptr<connection> from, to;
  };
  std::vector<pair> ps;
  for (uint64_t i = 0; i < pairs; ++i) {
    // "a…" < "b…" bytewise, as dm ids require.
    auto a = "a" + ctx.run_id + "-" + std::to_string(i);
    auto b = "b" + ctx.run_id + "-" + std::to_string(i);
    ps.push_back({"dm:" + a + ":" + b, conns.add(a, "d"), conns.add(b, "d")});
  }
  bool all_ready = conns.open_all(mon, 60s) == conns.all().size();

  cpu_probe cpu(ctx.server_pid);
  auto start = bench_clock::now();
  std::vector<std::unique_ptr<sender>> senders;
  if (all_ready) {
    auto stop_at = start + std::chrono::duration_cast<bench_clock::duration>(duration);
    for (size_t i = 0; i < ps.size(); ++i)
      senders.push_back(std::make_unique<sender>(
        ps[i].from, send_plan{ps[i].conv, count, stop_at, window, size, "c" + std::to_string(i) + "-"},
        t));
    for (auto& s : senders)
      s->start();
  }
  bool finished = all_ready &&
    wait_senders(mon, senders, std::chrono::duration_cast<bench_clock::duration>(duration) + 30s);
  auto load_end = bench_clock::now();
  // Grace: pushes may trail the last ack a little.
  mon.wait_until([&] { return t.delivered >= t.acked && t.echoed >= t.acked; },
                 std::chrono::duration_cast<bench_clock::duration>(grace));
  conns.close_all();
  pool.stop();

  auto out = base_summary("dm", params, t, conns);
  uint64_t lost = 0, lost_echo = 0;
  std::vector<uint32_t> ack_us;
  for (size_t i = 0; i < senders.size(); ++i) {
    auto& seqs = senders[i]->acked_seqs;
    lost += ps[i].to->missing(ps[i].conv, seqs);
    lost_echo += ps[i].from->missing(ps[i].conv, seqs);
    ack_us.insert(ack_us.end(), senders[i]->ack_us.begin(), senders[i]->ack_us.end());
  }
  out["lost"] = lost + lost_echo;
  out["lost_echo"] = lost_echo;
  out["expected_deliveries"] = t.acked.load();
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
  if (!all_ready)
    out["failure"] = "not every connection authenticated";
  else if (!finished)
    out["failure"] = "senders did not finish in time";
  out["ok"] = all_ready && finished;
  return out;
}

} // namespace imbench
