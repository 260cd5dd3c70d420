// idle: N authenticated connections that do nothing; the server's RSS
// growth per connection.
#include "bench/scenarios.hpp"
#include "bench/stats.hpp"

#include <sys/resource.h>

namespace imbench {

using namespace std::chrono_literals;

json run_idle(run_context& ctx) {
  const auto wanted = ctx.opts.num("conns", 1000);
  const auto settle = std::chrono::duration<double>(ctx.opts.real("settle", 2));
  const auto hold = std::chrono::duration<double>(ctx.opts.real("hold", 0));
  const auto concurrency = static_cast<unsigned>(ctx.opts.num("connect-concurrency", 100));
  ctx.opts.check_all_used();
  if (ctx.server_pid <= 0)
    throw std::invalid_argument("idle needs --server-pid or --spawn to read the server's RSS");

  // One descriptor per connection: raise the soft limit as far as allowed.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  const uint64_t reserve = 64;   // stdio, /proc reads, the engine pipe, epoll
  const uint64_t possible = lim.rlim_cur > reserve ? lim.rlim_cur - reserve : 0;
  const uint64_t n = std::min<uint64_t>(wanted, possible);
  if (n < wanted)
    std::fprintf(stderr, "idle: RLIMIT_NOFILE %llu allows only %llu of %llu connections\n",
                 (unsigned long long)lim.rlim_cur, (unsigned long long)n,
                 (unsigned long long)wanted);
  json params{{"conns", wanted}, {"settle_s", settle.count()}, {"nofile_limit", lim.rlim_cur}};

  totals t;
  io_pool pool(ctx.threads);
  monitor mon("idle", t);
  fleet conns(pool, t, ctx.base, concurrency);
  const long rss_before = proc_rss_kb(ctx.server_pid);
  for (uint64_t i = 0; i < n; ++i)
    conns.add("i" + ctx.run_id + "-" + std::to_string(i), "d");
  auto t0 = bench_clock::now();
  auto ready = conns.open_all(mon, 120s);
  auto open_s = std::chrono::duration<double>(bench_clock::now() - t0).count();
  // Let the server finish the per-connection work it does after auth_ok.
  mon.wait_until([] { return false; }, std::chrono::duration_cast<bench_clock::duration>(settle));
  const long rss_after = proc_rss_kb(ctx.server_pid);
  mon.wait_until([] { return false; }, std::chrono::duration_cast<bench_clock::duration>(hold));
  const long rss_held = proc_rss_kb(ctx.server_pid);
  conns.close_all();
  pool.stop();

  auto out = base_summary("idle", params, t, conns);
  out["connections_reached"] = ready;
  out["open_s"] = open_s;
  out["server"] = {{"rss_kb_before", rss_before}, {"rss_kb_after", rss_after},
                   {"rss_kb_after_hold", rss_held}};
  if (ready > 0 && rss_before > 0 && rss_after > 0)
    out["server"]["rss_bytes_per_conn"] =
      static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(ready);
  out["ok"] = ready == wanted;
  if (ready != wanted)
    out["failure"] = "reached " + std::to_string(ready) + " of " + std::to_string(wanted) +
                     " connections";
  return out;
}

} // namespace imbench
