#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/connection.hpp"
#include "engine/cluster.hpp"

// Several running nodes of one cluster in one run: `--ports=P1,P2,...`
// (WebSocket ports, all on --host), `--nodes=n1,n2,...` their node names
// in the same order (default n1..nK: the names bench/cluster.sh and the
// tests give), `--server-pids=PID1,...` for the engines' CPU. Owners come
// from imengine::cluster_map over the names, as every node computes them.
namespace imbench {

struct node_set {
  std::vector<uint16_t> ports;
  std::vector<std::string> names;   // names[i] serves ports[i]
  std::vector<int> pids;            // empty, or one per port
  std::unique_ptr<imengine::cluster_map> map;

  size_t size() const { return ports.size(); }
  // 0-based index of the node that owns `key` (a user or conversation id).
  size_t owner_index(const std::string& key) const;
  const std::string& owner(const std::string& key) const { return map->owner(key); }
};

// Ready connections whose auth_ok named another node than the one --nodes
// gives for their port (a wrong --nodes order would misplace owners); read
// after the io threads stopped. `sample` gets the first mismatch.
size_t wrong_nodes(const std::vector<std::shared_ptr<connection>>& conns, const node_set& nodes,
                   std::string& sample);

// Parses "A,B,C" of numbers; throws std::invalid_argument naming `flag`.
std::vector<uint64_t> parse_number_list(const std::string& flag, const std::string& s);

// Builds the set from the option values (ports non-empty). Throws
// std::invalid_argument on malformed or mismatching lists.
node_set make_node_set(const std::string& ports, const std::string& names,
                       const std::string& pids);

// One GET on 127.0.0.1-style `host`:`port`; the body, or "" on failure (1 s
// receive timeout, 4 MiB at most).
std::string http_get_body(const std::string& host, uint16_t port, const std::string& path);

// Per-node counters over one measured phase: utime+stime of each pid and
// the cluster counters of each node's /metrics (imengine_cluster_sent_total
// summed over peers, imengine_cluster_timeline_sent_total).
class cluster_probe {
public:
  cluster_probe(const node_set& nodes, std::string host);
  // Takes the end samples (once; report() takes them if never called).
  void stop();
  // Adds "cluster": {"nodes": [...], "sent_total", "timeline_sent_total",
  // per message figures over `messages`} to `out`.
  void report(nlohmann::json& out, uint64_t messages);

private:
  struct sample {
    double cpu = -1;
    double sent = -1;       // sum over peers; -1: not read
    double timeline = -1;
  };
  sample take(size_t i) const;
  const node_set& nodes_;
  std::string host_;
  std::vector<sample> start_, end_;
};

} // namespace imbench
