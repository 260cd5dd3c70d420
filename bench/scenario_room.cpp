// room-fanout: M members join one room r:<run id>, each online with one
// device; K of them send with a window. Room pushes carry seq, no iseq:
// every member must get every committed message exactly once, in seq
// order. A member that gets `notify` instead of pushes (its queue was over
// the engine's --slow-queue) pulls the announced gap with `history`, at once
// (connection) and, for what is left, before the final check
// (pull_announced); what was missed without being announced is lost.
#include <algorithm>
#include <optional>

#include "bench/cluster_nodes.hpp"
#include "bench/scenarios.hpp"
#include "bench/stats.hpp"

namespace imbench {

using namespace std::chrono_literals;

namespace {

// Every member joins from a short-lived connection (device "j"), `chunk`
// users at a time, closed once its `ok` came. A join is a system message
// pushed to the room's online members: joining from the measured
// connections would cost M²/2 pushes before the run even starts.
// `jt` must outlive the io threads: closed connections may still count.
// `port_of(i)`: the port user i connects to (0: the base port).
bool join_all(io_pool& pool, totals& jt, const conn_config& base,
              const std::vector<std::string>& users, const std::string& conv, size_t chunk,
              const std::function<uint16_t(size_t)>& port_of) {
  monitor mon("room-join", jt);
  for (size_t at = 0; at < users.size(); at += chunk) {
    fleet jf(pool, jt, base, static_cast<unsigned>(chunk));
    auto n = std::min(chunk, users.size() - at);
    for (size_t i = 0; i < n; ++i)
      jf.add(users[at + i], "j", port_of(at + i));
    if (jf.open_all(mon, 60s) != n) {
      jf.close_all();
      return false;
    }
    auto oks = std::make_shared<std::atomic<size_t>>(0);
    auto refused = std::make_shared<std::atomic<size_t>>(0);
    for (auto& c : jf.all())
      c->post([c, oks, refused, conv] {
        auto req = c->next_req();
        c->on_frame = [req, oks, refused](connection&, const json& f) {
          if (f.value("req", uint64_t{0}) == req)
            ++*(f.value("t", std::string()) == "ok" ? oks : refused);
        };
        c->send({{"t", "join"}, {"req", req}, {"conv", conv}});
      });
    bool answered = mon.wait_until([&] { return *oks + *refused >= n; }, 30s);
    jf.close_all();
    if (!answered || *refused > 0)
      return false;
  }
  return true;
}

} // namespace

json run_room(run_context& ctx) {
  const auto members = ctx.opts.num("members", 100);
  const auto senders_n = ctx.opts.num("senders", 1);
  const auto window = static_cast<unsigned>(ctx.opts.num("window", 10));
  const auto size = ctx.opts.num("size", 100);
  const auto count = ctx.opts.num("count", 1000);
  const auto duration = std::chrono::duration<double>(ctx.opts.real("duration", 30));
  const auto grace = std::chrono::duration<double>(ctx.opts.real("grace", 5));
  const auto concurrency = static_cast<unsigned>(ctx.opts.num("connect-concurrency", 100));
  const auto conv_owner = ctx.opts.num("conv-owner", 0);
  ctx.opts.check_all_used();
  if (members < 2 || senders_n < 1 || senders_n > members)
    throw std::invalid_argument("room-fanout needs --members>=2, 1<=--senders<=--members");
  if (conv_owner > 0 && (!ctx.nodes || conv_owner > ctx.nodes->size()))
    throw std::invalid_argument("--conv-owner needs --ports and must be a node number of them");
  json params{{"members", members}, {"senders", senders_n}, {"window", window}, {"size", size},
              {"count", count}, {"duration_s", duration.count()}, {"grace_s", grace.count()}};
  // With --ports: member i connects to node i mod K (senders are members
  // 0..K-1: the first on node 1).
  const auto port_of = [&](size_t i) -> uint16_t {
    return ctx.nodes ? ctx.nodes->ports[i % ctx.nodes->size()] : 0;
  };
  const auto to_d = [](auto d) { return std::chrono::duration_cast<bench_clock::duration>(d); };

  totals jt, t;   // before the pool: connections count into them until it stops
  io_pool pool(ctx.threads);
  auto conv = "r:" + ctx.run_id;
  if (conv_owner > 0) {   // "r:<run id>-<x>", the first x the node owns
    for (int x = 0; x < 400 && ctx.nodes->owner_index(conv) + 1 != conv_owner; ++x)
      conv = "r:" + ctx.run_id + "-" + std::to_string(x);
    if (ctx.nodes->owner_index(conv) + 1 != conv_owner)
      throw std::runtime_error("no room name owned by node " + std::to_string(conv_owner));
  }
  if (ctx.nodes) {
    json per_node = json::object();
    for (size_t i = 0; i < members; ++i)
      per_node[ctx.nodes->names[i % ctx.nodes->size()]] =
        per_node.value(ctx.nodes->names[i % ctx.nodes->size()], 0) + 1;
    params["cluster"] = {{"members_per_node", per_node}, {"conv", conv},
                         {"conv_owner", ctx.nodes->owner(conv)},
                         {"sender_node", ctx.nodes->names[0]}};
  }
  std::vector<std::string> users;
  for (uint64_t i = 0; i < members; ++i)
    users.push_back("r" + ctx.run_id + "-" + std::to_string(i));
  auto setup_start = bench_clock::now();
  bool joined = join_all(pool, jt, ctx.base, users, conv, std::max(1u, concurrency), port_of);
  auto join_s = std::chrono::duration<double>(bench_clock::now() - setup_start).count();

  // The measured connections come online after every join: they get the
  // room's pushes from then on, nothing of the setup.
  monitor mon("room-fanout", t);
  auto base = ctx.base;
  base.record_arrivals = true;   // for the spread
  fleet conns(pool, t, base, concurrency);
  for (size_t i = 0; i < users.size(); ++i)
    conns.add(users[i], "d", port_of(i));
  bool ready = joined && conns.open_all(mon, 60s) == members;

  cpu_probe cpu(ctx.server_pid);
  std::optional<cluster_probe> cprobe;
  if (ctx.nodes)
    cprobe.emplace(*ctx.nodes, ctx.base.host);
  auto start = bench_clock::now();
  std::vector<std::unique_ptr<sender>> senders;
  if (ready)
    senders = start_senders(conns.all(), senders_n,
                            send_plan{conv, count, start + to_d(duration), window, size, "r"}, t);
  bool finished = ready && wait_senders(mon, senders, to_d(duration) + 30s);
  auto load_end = bench_clock::now();
  if (cprobe)
    cprobe->stop();   // every acked message is counted by now (before its ack)
  // Grace: every member has every acked message, or a notify announced it
  // held back (never pushed then: pulled).
  auto end = end_run(conns, pool, mon, t, t.acked * members, conv, senders, finished, true,
                     to_d(grace));
  const auto& committed = end.committed;
  const auto& pull = end.pull;
  std::unordered_map<uint64_t, size_t> sender_of;   // senders are conns.all()[0..K)
  for (size_t i = 0; i < senders.size(); ++i)
    for (auto seq : senders[i]->acked_seqs)
      sender_of[seq] = i;

  auto out = base_summary("room-fanout", params, t, conns);
  uint64_t lost = 0, lost_echo = 0;
  for (size_t i = 0; i < conns.all().size(); ++i) {
    auto n = conns.all()[i]->missing(conv, committed);
    lost += n;
    if (i < senders.size())
      lost_echo += conns.all()[i]->missing(conv, senders[i]->acked_seqs);
  }
  out["lost"] = lost;
  out["lost_echo"] = lost_echo;
  out["expected_deliveries"] = t.acked * (members - 1);
  out["notified"] = t.notified.load();
  out["pulled"] = t.pulled.load();
  out["pull"] = {{"members", pull.members}, {"requests", pull.requests}, {"complete", pull.complete}};
  auto load_s = std::chrono::duration<double>(load_end - start).count();
  // Live pushes only: pulls count in `delivered`, not in the rate, and do
  // not move last_push.
  auto delivered_live = t.delivered - t.pulled;
  auto deliver_s = std::chrono::duration<double>(std::max(conns.last_push(), start) - start).count();
  out["elapsed_s"] = load_s;
  out["setup_s"] = {{"join", join_s}};
  out["throughput"] = {{"msgs_per_s", load_s > 0 ? t.acked / load_s : 0.0},
                       {"deliveries_per_s", deliver_s > 0 ? delivered_live / deliver_s : 0.0}};
  auto delivery_us = conns.delivery_us();
  auto spread_us = arrival_spread_us(conns, conv, committed, sender_of);
  out["latency_ms"] = {{"ack", latency_summary(end.ack_us)},
                       {"delivery", latency_summary(delivery_us)},
                       {"spread", latency_summary(spread_us)}};
  json server = json::object();
  cpu.report(server, t.acked);
  out["server"] = server;
  std::string wrong;
  if (cprobe) {
    // Sampled at the load's end: the measured messages' counters (the
    // joins came before the first sample).
    cprobe->report(out, t.acked);
    if (wrong_nodes(conns.all(), *ctx.nodes, wrong) == 0)
      wrong.clear();
  }
  out["ok"] = ready && finished && pull.complete && wrong.empty();
  if (!joined)
    out["failure"] = "joins did not complete";
  else if (!ready)
    out["failure"] = "not every member connection authenticated";
  else if (!finished)
    out["failure"] = "senders did not finish in time";
  else if (!pull.complete)
    out["failure"] = "history pulls of notified gaps did not finish in time";
  else if (!wrong.empty())
    out["failure"] = "--nodes does not match the nodes: " + wrong;
  return out;
}

} // namespace imbench
