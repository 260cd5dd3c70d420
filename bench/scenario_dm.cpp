// dm: P pairs; each pair's sender keeps W sends in flight to its receiver.
// Every acked message must reach the receiver and the sender's own device
// exactly once, in seq order.
#include <optional>

#include "bench/cluster_nodes.hpp"
#include "bench/scenarios.hpp"
#include "bench/stats.hpp"

namespace imbench {

using namespace std::chrono_literals;

namespace {

// With --ports: which node each side connects to and who owns what. Node
// numbers are 1-based positions in --ports; an owner 0 is left to chance.
struct dm_placement {
  size_t sender_node = 1, receiver_node = 1;
  size_t sender_owner = 0, receiver_owner = 0, conv_owner = 0;
};

dm_placement read_placement(const run_context& ctx) {
  dm_placement p;
  const auto& o = ctx.opts;
  const size_t k = ctx.nodes ? ctx.nodes->size() : 1;
  p.sender_node = o.num("sender-node", 1);
  p.receiver_node = o.num("receiver-node", k >= 2 ? 2 : 1);
  p.sender_owner = o.num("sender-owner", 0);
  p.receiver_owner = o.num("receiver-owner", 0);
  p.conv_owner = o.num("conv-owner", 0);
  for (auto n : {p.sender_node, p.receiver_node})
    if (n < 1 || n > k)
      throw std::invalid_argument("--sender-node/--receiver-node must be 1.." + std::to_string(k) +
                                  (ctx.nodes ? "" : " (more need --ports)"));
  for (auto n : {p.sender_owner, p.receiver_owner, p.conv_owner})
    if (n > k || (n > 0 && !ctx.nodes))
      throw std::invalid_argument("--sender-owner/--receiver-owner/--conv-owner need --ports and "
                                  "must be 1.." + std::to_string(k));
  return p;
}

// Pair i's user names: "a<run>-i" and "b<run>-i" as always; with owners
// asked for, "a<run>-i-<x>" / "b<run>-i-<y>" with the first x, y (in a
// bounded search) that give the wanted owners.
std::pair<std::string, std::string> pair_names(const run_context& ctx, const dm_placement& p,
                                               uint64_t i) {
  auto a0 = "a" + ctx.run_id + "-" + std::to_string(i);
  auto b0 = "b" + ctx.run_id + "-" + std::to_string(i);
  if (!p.sender_owner && !p.receiver_owner && !p.conv_owner)
    return {a0, b0};
  const auto& ns = *ctx.nodes;
  auto fits = [&](const std::string& key, size_t want) {
    return want == 0 || ns.owner_index(key) + 1 == want;
  };
  constexpr int limit = 400;   // (2/3)^400 odds of no fit per side with 3 nodes
  std::vector<std::string> as, bs;
  for (int x = 0; x < limit && as.size() < 40; ++x)
    if (auto a = a0 + "-" + std::to_string(x); fits(a, p.sender_owner))
      as.push_back(a);
  for (int y = 0; y < limit && bs.size() < 40; ++y)
    if (auto b = b0 + "-" + std::to_string(y); fits(b, p.receiver_owner))
      bs.push_back(b);
  for (auto& a : as)
    for (auto& b : bs)
      if (fits("dm:" + a + ":" + b, p.conv_owner))
        return {a, b};
  throw std::runtime_error("no user names with the asked owners for pair " + std::to_string(i));
}

} // namespace

json run_dm(run_context& ctx) {
  const auto pairs = ctx.opts.num("pairs", 10);
  const auto window = static_cast<unsigned>(ctx.opts.num("window", 10));
  const auto size = ctx.opts.num("size", 100);
  const auto count = ctx.opts.num("count", 1000);
  const auto duration = std::chrono::duration<double>(ctx.opts.real("duration", 30));
  const auto grace = std::chrono::duration<double>(ctx.opts.real("grace", 5));
  const auto concurrency = static_cast<unsigned>(ctx.opts.num("connect-concurrency", 100));
  const auto place = read_placement(ctx);
  ctx.opts.check_all_used();
  json params{{"pairs", pairs}, {"window", window}, {"size", size}, {"count", count},
              {"duration_s", duration.count()}, {"grace_s", grace.count()}};
  uint16_t from_port = 0, to_port = 0;   // 0: the base port
  if (ctx.nodes) {
    from_port = ctx.nodes->ports[place.sender_node - 1];
    to_port = ctx.nodes->ports[place.receiver_node - 1];
    auto name = [&](size_t n) { return n ? json(ctx.nodes->names[n - 1]) : json("any"); };
    params["cluster"] = {{"sender_node", name(place.sender_node)},
                         {"receiver_node", name(place.receiver_node)},
                         {"sender_owner", name(place.sender_owner)},
                         {"receiver_owner", name(place.receiver_owner)},
                         {"conv_owner", name(place.conv_owner)}};
  }

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
    auto [a, b] = pair_names(ctx, place, i);
    ps.push_back({"dm:" + a + ":" + b, conns.add(a, "d", from_port), conns.add(b, "d", to_port)});
  }
  bool all_ready = conns.open_all(mon, 60s) == conns.all().size();

  cpu_probe cpu(ctx.server_pid);
  std::optional<cluster_probe> cprobe;
  if (ctx.nodes)
    cprobe.emplace(*ctx.nodes, ctx.base.host);
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
  if (cprobe)
    cprobe->stop();   // before the closes: their offline traffic is no message's
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
  std::string wrong;
  if (cprobe) {
    cprobe->report(out, t.acked);
    if (wrong_nodes(conns.all(), *ctx.nodes, wrong) == 0)
      wrong.clear();
    // Where the conversations live (a placement left to chance counts).
    json owners = json::object();
    for (auto& p : ps)
      owners[ctx.nodes->owner(p.conv)] = owners.value(ctx.nodes->owner(p.conv), 0) + 1;
    out["cluster"]["conv_owners"] = owners;
  }
  if (!all_ready)
    out["failure"] = "not every connection authenticated";
  else if (!finished)
    out["failure"] = "senders did not finish in time";
  else if (!wrong.empty())
    out["failure"] = "--nodes does not match the nodes: " + wrong;
  out["ok"] = all_ready && finished && wrong.empty();
  return out;
}

} // namespace imbench
