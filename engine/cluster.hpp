#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace imengine {

// One entry of `--peers`: a node name and its cluster address.
struct peer {
  std::string name;
  std::string host;   // an IPv6 literal without its brackets
  uint16_t port = 0;
};

// Node names: 1-32 chars of [A-Za-z0-9_-].
bool valid_node(std::string_view s) noexcept;

// Parses the `--peers` value `n1@127.0.0.1:7001,n2@[::1]:7002,...` in list
// order. Whitespace around entries is ignored; an empty value is an empty
// list. Hosts: non-empty printable ASCII without '@', ',', ':', '[', ']'
// or spaces, or a bracketed IPv6 literal of hex digits, ':' and '.' (no
// zone ids). Ports: 1..65535.
// Errors (bad_config) name the entry by position and text and say why:
// malformed entry, duplicate name, duplicate host:port (host compared
// case-insensitively, not resolved).
result<std::vector<peer>> parse_peers(std::string_view s);

// Rendezvous weight of `key` on `node`: FNV-1a 64 over node + '\0' + key,
// then murmur3's fmix64. Owners decide where data lives on disk, so this
// must never change: a different hash would strand data on the old owners.
uint64_t rendezvous_weight(std::string_view node, std::string_view key) noexcept;

// Which node owns which user or conversation: rendezvous (highest random
// weight) hashing over the configured node set, so that every node computes
// the same owner and removing a node moves only the keys it owned.
// Users and conversations share one key space safely: a conv id always
// contains ':' and a user id never does, so no user id equals a conv id.
class cluster_map {
public:
  // The node set is the names in `peers` plus `self` (which may or may not
  // be listed). Names are taken as given; parse_peers checks them.
  cluster_map(std::string self, const std::vector<peer>& peers);

  const std::string& self() const noexcept { return self_; }
  // Every node, sorted.
  const std::vector<std::string>& nodes() const noexcept { return nodes_; }
  bool alone() const noexcept { return nodes_.size() == 1; }

  // The node with the highest weight for `key`; on equal weights the
  // smallest name.
  const std::string& owner(std::string_view key) const noexcept;
  bool owns(std::string_view key) const noexcept { return owner(key) == self_; }

private:
  std::string self_;
  std::vector<std::string> nodes_;
  std::vector<uint64_t> seeds_;   // FNV-1a state after node + '\0', per node
};

} // namespace imengine
