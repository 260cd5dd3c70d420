#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/engine_process.hpp"
#include "tests/support/temp_dir.hpp"

// Test support: a cluster of real engine processes on 127.0.0.1.
namespace imengine::testing {

// n distinct TCP ports on 127.0.0.1 that were free a moment ago: all n
// sockets stay bound until every port is chosen. Another process may still
// take one before the engine binds it; the ephemeral range makes that rare.
std::vector<uint16_t> free_ports(size_t n);

// N engines named n1..nN, each with its own data dir and cluster port, all
// given the same `--peers` list (every node, itself included). Nodes are
// numbered k = 1..N as in their names; a k out of range throws.
class cluster_fixture {
public:
  // Starts every node (concurrently: an engine may wait for its peers
  // before it listens) with `--node=nK --cluster-port=P_K
  // --cluster-host=127.0.0.1 --peers=n1@127.0.0.1:P1,...` plus `extra_args`.
  // Throws if one does not start. Does not wait for the cluster to form:
  // see wait_cluster_up.
  explicit cluster_fixture(size_t n, std::vector<std::string> extra_args = {});
  // As above, node k also given per_node(k) (its own certificate, ...).
  using node_args = std::function<std::vector<std::string>(size_t k)>;
  cluster_fixture(size_t n, std::vector<std::string> extra_args, const node_args& per_node);

  size_t size() const { return nodes_.size(); }
  static std::string name(size_t k) { return "n" + std::to_string(k); }
  uint16_t cluster_port(size_t k) const;
  const std::string& peers_flag() const { return peers_; }

  // The node's process: port(), login(...), running(), terminate(). The
  // reference stays valid across restart(k); its port() changes.
  engine_process& node(size_t k);

  // SIGKILL node k.
  void kill9(size_t k);
  // SIGKILL node k if running, then start it with the same data dir,
  // cluster port and flags. Its WebSocket port is new: ask node(k).port().
  void restart(size_t k);

  // Polls GET /cluster on every node until each reports every other node
  // `"up":true`. False at the deadline, or at once if a node is not
  // running (after kill9, use wait_peer_state).
  bool wait_cluster_up(std::chrono::milliseconds deadline = 10000ms);
  // Polls GET /cluster on node k until it reports `peer` with `"up":up`.
  // False at the deadline, or at once if node k is not running.
  bool wait_peer_state(size_t k, const std::string& peer, bool up,
                       std::chrono::milliseconds deadline = 10000ms);

private:
  size_t index(size_t k) const;

  // temp_dir removes its directory when destroyed (and has no move), so
  // each lives on the heap. nodes_ is last: engines die before their dirs go.
  std::vector<std::unique_ptr<temp_dir>> dirs_;
  std::vector<uint16_t> cluster_ports_;
  std::string peers_;
  std::vector<std::unique_ptr<engine_process>> nodes_;
};

} // namespace imengine::testing
