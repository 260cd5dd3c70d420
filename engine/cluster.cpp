#include "engine/cluster.hpp"

#include <algorithm>
#include <map>

namespace imengine {

namespace {

constexpr size_t max_node_len = 32;
constexpr uint64_t fnv_offset = 14695981039346656037ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

// Bytes as unsigned char: the hash must not depend on char's signedness.
uint64_t fnv1a(uint64_t h, std::string_view s) noexcept {
  for (unsigned char c : s) {
    h ^= c;
    h *= fnv_prime;
  }
  return h;
}

// murmur3's 64-bit finalizer. FNV-1a alone is a poor rendezvous weight:
// every node hashes the same key bytes last, so the weights of two nodes
// for one key are correlated and the owners come out unbalanced; fmix64
// makes every output bit depend on every input bit.
uint64_t fmix64(uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

// FNV-1a state after node + '\0': the '\0' (never in a node name) keeps
// ("ab", "c") and ("a", "bc") apart.
uint64_t node_seed(std::string_view node) noexcept {
  return fnv1a(fnv1a(fnv_offset, node), std::string_view{"\0", 1});
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

bool node_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
         || c == '-';
}

bool hex_char(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string address(const peer& p) {
  auto port = std::to_string(p.port);
  if (p.host.find(':') != std::string::npos)
    return "[" + p.host + "]:" + port;
  return p.host + ":" + port;
}

// Why `host` (unbracketed) is not acceptable, or "" if it is.
std::string host_problem(std::string_view host) {
  if (host.empty())
    return "empty host";
  if (host.find(':') != std::string_view::npos)
    return "an IPv6 host must be bracketed, e.g. [::1]:7001";
  for (char c : host) {
    if (c == '@' || c == '[' || c == ']')
      return std::string{"host contains '"} + c + "'";
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return "host contains whitespace or a non-printable byte";
  }
  return {};
}

// Why `text` (trimmed, one entry) is not `name@host:port`, or "" and `out`
// filled in.
std::string parse_entry(std::string_view text, peer& out) {
  if (text.empty())
    return "empty entry";
  auto at = text.find('@');
  if (at == std::string_view::npos)
    return "missing '@' between node name and address";
  auto name = text.substr(0, at);
  if (name.empty())
    return "empty node name";
  if (name.size() > max_node_len)
    return "node name longer than 32 chars";
  if (!valid_node(name))
    return "node name may only contain [A-Za-z0-9_-]";
  auto addr = text.substr(at + 1);
  std::string_view host, port;
  if (!addr.empty() && addr.front() == '[') {
    auto close = addr.find(']');
    if (close == std::string_view::npos)
      return "unclosed '[' in IPv6 host";
    host = addr.substr(1, close - 1);
    if (host.empty())
      return "empty IPv6 host";
    if (host.find(':') == std::string_view::npos
        || !std::all_of(host.begin(), host.end(),
                        [](char c) { return hex_char(c) || c == ':' || c == '.'; }))
      return "bad IPv6 literal '" + std::string{host} + "'";
    auto rest = addr.substr(close + 1);
    if (rest.empty() || rest.front() != ':')
      return "missing ':PORT' after ']'";
    port = rest.substr(1);
  } else {
    auto colon = addr.rfind(':');
    if (colon == std::string_view::npos)
      return "missing ':PORT'";
    host = addr.substr(0, colon);
    if (auto why = host_problem(host); !why.empty())
      return why;
    port = addr.substr(colon + 1);
  }
  if (port.empty())
    return "empty port";
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return "port '" + std::string{port} + "' is not a decimal number";
  uint32_t value = 0;
  for (char c : port)
    value = std::min<uint32_t>(value * 10 + static_cast<uint32_t>(c - '0'), 65536);
  if (value < 1 || value > 65535)
    return "port " + std::string{port} + " is not in 1..65535";
  out.name = std::string{name};
  out.host = std::string{host};
  out.port = static_cast<uint16_t>(value);
  return {};
}

} // namespace

bool valid_node(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_node_len && std::all_of(s.begin(), s.end(), node_char);
}

result<std::vector<peer>> parse_peers(std::string_view s) {
  std::vector<peer> out;
  if (trim(s).empty())
    return out;
  std::map<std::string, size_t> names, addrs;   // -> 1-based entry number
  size_t index = 0;
  for (;;) {
    ++index;
    auto comma = s.find(',');
    auto text = trim(s.substr(0, comma));
    auto fail = [&](const std::string& why) {
      return failure{errc::bad_config, "--peers entry " + std::to_string(index) + " '"
                                         + std::string{text} + "': " + why};
    };
    peer p;
    if (auto why = parse_entry(text, p); !why.empty())
      return fail(why);
    if (auto [it, fresh] = names.emplace(p.name, index); !fresh)
      return fail("duplicate node name '" + p.name + "' (entry " + std::to_string(it->second)
                  + ")");
    // Case-insensitive: host names are; IPv6 hex digits too.
    auto addr = address(p);
    if (auto [it, fresh] = addrs.emplace(lower(addr), index); !fresh)
      return fail("duplicate address " + addr + " (entry " + std::to_string(it->second) + ")");
    out.push_back(std::move(p));
    if (comma == std::string_view::npos)
      return out;
    s.remove_prefix(comma + 1);
  }
}

uint64_t rendezvous_weight(std::string_view node, std::string_view key) noexcept {
  return fmix64(fnv1a(node_seed(node), key));
}

cluster_map::cluster_map(std::string self, const std::vector<peer>& peers)
  : self_(std::move(self)) {
  nodes_.reserve(peers.size() + 1);
  for (auto& p : peers)
    nodes_.push_back(p.name);
  nodes_.push_back(self_);
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  seeds_.reserve(nodes_.size());
  for (auto& n : nodes_)
    seeds_.push_back(node_seed(n));
}

const std::string& cluster_map::owner(std::string_view key) const noexcept {
  // Nodes are sorted and only a strictly higher weight wins, so equal
  // weights go to the smallest name.
  size_t best = 0;
  uint64_t best_w = fmix64(fnv1a(seeds_[0], key));
  for (size_t i = 1; i < nodes_.size(); ++i) {
    auto w = fmix64(fnv1a(seeds_[i], key));
    if (w > best_w) {
      best = i;
      best_w = w;
    }
  }
  return nodes_[best];
}

} // namespace imengine
