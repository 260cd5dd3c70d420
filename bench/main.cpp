// imbench: load generator for imengine. See docs/BENCHMARKS.md.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

#include "bench/cluster_nodes.hpp"
#include "bench/scenarios.hpp"
#include "bench/spawn.hpp"

namespace {

const char* usage =
  "usage: imbench SCENARIO [options]\n"
  "scenarios: dm, offline, idle, group, room-fanout\n"
  "common:  --host=127.0.0.1 --port=N | --spawn=PATH [--sync=full|none] [--engine-args='...']\n"
  "         --server-pid=PID --threads=1 --encoding=json|msgpack --run-id=ID\n"
  "cluster: --ports=P1,P2,.. (running nodes on --host, instead of --port) [--nodes=n1,n2,..\n"
  "         their names, default n1..nK] [--server-pids=PID1,..]; dm and room-fanout use\n"
  "         every node, the other scenarios the first. dm: --sender-node=1\n"
  "         --receiver-node=2 (1-based) and, choosing user names by owner,\n"
  "         --sender-owner=N --receiver-owner=N --conv-owner=N; room-fanout: members\n"
  "         round-robin over the nodes, --conv-owner=N. See bench/cluster.sh\n"
  "dm:      --pairs=10 --window=10 --size=100 --count=1000 --duration=30 --grace=5\n"
  "offline: --count=1000 --window=100 --page=100 --size=100\n"
  "idle:    --conns=1000 --settle=2 --hold=0\n"
  "group:   --members=100 --senders=1 --window=10 --size=100 --count=1000 --duration=30\n"
  "         --grace=5 --mode=inbox|timeline (timeline + --spawn: the engine gets\n"
  "         --large-group=MEMBERS-1 unless --engine-args sets it; without --spawn,\n"
  "         start the engine with --large-group below --members)\n"
  "room-fanout: --members=100 --senders=1 --window=10 --size=100 --count=1000\n"
  "         --duration=30 --grace=5. Members whose queue passes the engine's\n"
  "         --slow-queue (default 256) get notify and pull with history (`notified`,\n"
  "         `pulled`); for many members raise it: --engine-args='--slow-queue=4096'\n"
  "exit: 0 ok, 1 lost/duplicated/out-of-order, 2 run failed, 3 not available, 64 usage\n";

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

} // namespace

int main(int argc, char** argv) {
  using namespace imbench;
  if (argc < 2 || std::string(argv[1]).rfind("--", 0) == 0) {
    std::fputs(usage, stderr);
    return 64;
  }
  const std::string scenario = argv[1];
  json (*run)(run_context&) = scenario == "dm"        ? run_dm
                              : scenario == "offline" ? run_offline
                              : scenario == "idle"    ? run_idle
                              : scenario == "group"   ? run_group
                              : scenario == "room-fanout" ? run_room
                                                          : nullptr;
  if (!run) {
    std::fprintf(stderr, "imbench: unknown scenario '%s'\n%s", scenario.c_str(), usage);
    return 64;
  }
  try {
    options opts(argc, argv, 2);
    run_context ctx{opts, {}, 1, {}, -1, nullptr};
    ctx.base.host = opts.str("host", "127.0.0.1");
    ctx.base.msgpack = opts.str("encoding", "json") == "msgpack";
    if (!ctx.base.msgpack && opts.str("encoding", "json") != "json")
      throw std::invalid_argument("--encoding must be json or msgpack");
    ctx.threads = static_cast<unsigned>(opts.num("threads", 1));
    ctx.run_id = opts.str("run-id", std::to_string(getpid()) + "x" + std::to_string(time(nullptr) % 100000));
    ctx.server_pid = static_cast<int>(opts.num("server-pid", 0));
    json server{{"spawned", false}};
    std::optional<engine_child> engine;
    if (opts.has("spawn")) {
      auto sync = opts.str("sync", "full");
      auto args = split_words(opts.str("engine-args", ""));
      args.push_back("--sync=" + sync);
      // A timeline group needs the engine's threshold below its size.
      if (scenario == "group" && opts.str("mode", "inbox") == "timeline" &&
          opts.str("engine-args", "").find("--large-group") == std::string::npos)
        args.push_back("--large-group=" +
                       std::to_string(std::max<uint64_t>(1, opts.num("members", 100) - 1)));
      if (ctx.base.host != "127.0.0.1")
        throw std::invalid_argument("--spawn binds the engine to 127.0.0.1");
      engine.emplace(opts.str("spawn", ""), args);
      ctx.base.port = engine->port();
      if (ctx.server_pid <= 0)
        ctx.server_pid = engine->pid();
      server = {{"spawned", true}, {"sync", sync}, {"engine_args", args}};
    } else if (opts.has("ports")) {
      if (opts.has("port"))
        throw std::invalid_argument("give --port or --ports, not both");
      auto ns = std::make_shared<node_set>(make_node_set(
        opts.str("ports", ""), opts.str("nodes", ""), opts.str("server-pids", "")));
      ctx.base.port = ns->ports.front();
      // Engine CPU of a cluster run: "cluster" in the summary, every node.
      ctx.nodes = ns;
      server = {{"spawned", false}, {"ports", ns->ports}, {"nodes", ns->names},
                {"pids", ns->pids}};
    } else {
      ctx.base.port = static_cast<uint16_t>(opts.num("port", 0));
      if (ctx.base.port == 0)
        throw std::invalid_argument("give --port=N, --ports=P1,P2,.. or --spawn=PATH");
    }
    auto out = run(ctx);
    out["params"]["encoding"] = ctx.base.msgpack ? "msgpack" : "json";
    out["params"]["threads"] = ctx.threads;
    server["pid"] = ctx.server_pid;
    if (engine)
      server["exit_status"] = engine->stop();
    out["server"].update(server);
    // The load generator shares the machine: say how much CPU it took.
    rusage self{};
    getrusage(RUSAGE_SELF, &self);
    out["client_cpu_s"] = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                          static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
    std::cout << out.dump(2) << std::endl;
    uint64_t bad = out["lost"].get<uint64_t>() + out["duplicated"].get<uint64_t>() +
                   out["out_of_order"].get<uint64_t>();
    if (bad > 0)
      return 1;
    return out["ok"].get<bool>() ? 0 : 2;
  } catch (const not_available& e) {
    std::fprintf(stderr, "imbench: not available yet: %s\n", e.what());
    return 3;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "imbench: %s\n%s", e.what(), usage);
    return 64;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imbench: run failed: %s\n", e.what());
    return 2;
  }
}
