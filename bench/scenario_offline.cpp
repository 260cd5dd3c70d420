// offline: K messages to a user who is offline; then the user logs in and
// pulls its inbox with sync, page by page. Measures login → all synced.
#include "bench/scenarios.hpp"
#include "bench/stats.hpp"

namespace imbench {

using namespace std::chrono_literals;

json run_offline(run_context& ctx) {
  const auto count = ctx.opts.num("count", 1000);
  const auto window = static_cast<unsigned>(ctx.opts.num("window", 100));
  const auto size = ctx.opts.num("size", 100);
  const auto page = ctx.opts.num("page", 100);
  const auto limit = std::chrono::duration<double>(ctx.opts.real("duration", 120));
  ctx.opts.check_all_used();
  json params{{"count", count}, {"window", window}, {"size", size}, {"page", page}};
  const auto limit_d = std::chrono::duration_cast<bench_clock::duration>(limit);

  totals t;
  io_pool pool(ctx.threads);
  monitor mon("offline", t);
  fleet conns(pool, t, ctx.base, 1);
  auto a = "oa" + ctx.run_id, b = "ob" + ctx.run_id;
  auto conv = "dm:" + a + ":" + b;
  conns.add(a, "d");
  bool ok = conns.open_all(mon, 30s) == 1;
  sender fill(conns.all()[0], send_plan{conv, count, bench_clock::now() + limit_d, window, size, "o-"}, t);
  if (ok) {
    fill.start();
    ok = mon.wait_until([&] { return fill.done() && t.echoed >= t.acked; }, limit_d + 30s);
  }

  // The login and the sync, timed. State below is touched on the io thread
  // of the reader only, apart from the atomics.
  cpu_probe cpu(ctx.server_pid);
  auto t0 = bench_clock::now();
  auto reader = conns.add(b, "d");
  bench_clock::time_point logged_in{}, synced{};
  std::atomic<bool> done{false};
  uint64_t pages = 0, sync_req = 0;
  auto ask = [&](connection& c, uint64_t after) {
    sync_req = c.next_req();
    ++pages;
    c.send({{"t", "sync"}, {"req", sync_req}, {"after", after}, {"limit", page}});
  };
  reader->on_frame = [&](connection& c, const json& f) {
    if (f.value("t", std::string()) != "sync_result" || f.value("req", uint64_t{0}) != sync_req)
      return;
    for (auto& m : f["msgs"])
      c.record_push(m, false);
    if (f.value("more", false) && !f["msgs"].empty())
      return ask(c, c.last_pulled_iseq);   // also acks the previous page
    c.ack(c.last_pulled_iseq);
    synced = bench_clock::now();
    done = true;
  };
  if (ok && conns.open_all(mon, 30s) == 1) {
    logged_in = bench_clock::now();
    reader->post([&] { ask(*reader, 0); });
    ok = mon.wait_until([&] { return done.load(); }, limit_d);
  } else {
    ok = false;
  }
  conns.close_all();
  pool.stop();

  auto out = base_summary("offline", params, t, conns);
  out["lost"] = reader->missing(conv, fill.acked_seqs);
  out["expected_deliveries"] = fill.acked_seqs.size();
  out["sync_pages"] = pages;
  if (ok) {
    auto ms = [&](bench_clock::time_point e) { return std::chrono::duration<double, std::milli>(e - t0).count(); };
    out["login_ms"] = ms(logged_in);
    out["login_to_synced_ms"] = ms(synced);
    out["throughput"] = {{"synced_msgs_per_s", fill.acked_seqs.size() * 1000.0 / ms(synced)}};
  }
  json server = json::object();
  cpu.report(server, fill.acked_seqs.size());
  out["server"] = server;
  out["latency_ms"] = {{"ack", latency_summary(fill.ack_us)}};
  out["ok"] = ok;
  if (!ok)
    out["failure"] = "fill, login or sync did not complete in time";
  return out;
}

} // namespace imbench
