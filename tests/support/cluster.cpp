#include "tests/support/cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <exception>
#include <future>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

namespace imengine::testing {

namespace {

// Polling interval of the waits below, not a guess at how long anything takes.
constexpr auto poll_interval = 20ms;

// What GET /cluster on `port` says about each peer (name -> up), if it
// answers 200 with the documented JSON and names itself `self`; nullopt
// otherwise (not up yet, no /cluster yet, a bad body): the callers poll.
std::optional<std::map<std::string, bool>> cluster_view(uint16_t port, const std::string& self) {
  std::pair<int, std::string> resp;
  try {
    resp = http_get(port, "/cluster");
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (resp.first != 200)
    return std::nullopt;
  auto j = json::parse(resp.second, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("node", "") != self || !j.contains("peers")
      || !j["peers"].is_array())
    return std::nullopt;
  std::map<std::string, bool> out;
  for (auto& p : j["peers"]) {
    if (!p.is_object() || !p.contains("node") || !p["node"].is_string() || !p.contains("up")
        || !p["up"].is_boolean())
      return std::nullopt;
    out[p["node"].get<std::string>()] = p["up"].get<bool>();
  }
  return out;
}

// Calls `done` every poll_interval until it returns true (then true) or the
// deadline passes (then false); `done` runs at least once.
template <class F>
bool poll_until(std::chrono::milliseconds deadline, F done) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (done())
      return true;
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(poll_interval);
  }
}

} // namespace

std::vector<uint16_t> free_ports(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  auto close_all = [&] {
    for (int fd : fds)
      close(fd);
  };
  for (size_t i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      close_all();
      throw std::runtime_error("free_ports: socket failed");
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;   // the kernel picks a free one
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
        || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close_all();
      throw std::runtime_error("free_ports: bind failed");
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  // Bound, never listened on or connected: closing leaves no TIME_WAIT.
  close_all();
  return ports;
}

cluster_fixture::cluster_fixture(size_t n, std::vector<std::string> extra_args)
  : cluster_fixture(n, std::move(extra_args), [](size_t) { return std::vector<std::string>{}; }) {
}

cluster_fixture::cluster_fixture(size_t n, std::vector<std::string> extra_args,
                                 const node_args& per_node) {
  if (n == 0)
    throw std::invalid_argument("cluster_fixture: no nodes");
  cluster_ports_ = free_ports(n);
  for (size_t k = 1; k <= n; ++k) {
    if (k > 1)
      peers_ += ",";
    peers_ += name(k) + "@127.0.0.1:" + std::to_string(cluster_ports_[k - 1]);
    dirs_.push_back(std::make_unique<temp_dir>());
  }
  std::vector<std::future<std::unique_ptr<engine_process>>> starting;
  for (size_t k = 1; k <= n; ++k) {
    std::vector<std::string> args{"--node=" + name(k),
                                  "--cluster-port=" + std::to_string(cluster_ports_[k - 1]),
                                  "--cluster-host=127.0.0.1", "--peers=" + peers_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto own = per_node(k);
    args.insert(args.end(), own.begin(), own.end());
    starting.push_back(std::async(std::launch::async, [dir = dirs_[k - 1]->str(),
                                                       args = std::move(args)]() mutable {
      return std::make_unique<engine_process>(dir, std::move(args));
    }));
  }
  // Collect every start, even after a failure, so that no engine outlives
  // the fixture; then report the first failure.
  std::exception_ptr first_error;
  for (auto& f : starting) {
    try {
      nodes_.push_back(f.get());
    } catch (...) {
      if (!first_error)
        first_error = std::current_exception();
    }
  }
  if (first_error)
    std::rethrow_exception(first_error);
}

size_t cluster_fixture::index(size_t k) const {
  if (k < 1 || k > nodes_.size())
    throw std::out_of_range("cluster_fixture: no node " + std::to_string(k) + " of "
                            + std::to_string(nodes_.size()));
  return k - 1;
}

uint16_t cluster_fixture::cluster_port(size_t k) const {
  return cluster_ports_[index(k)];
}

engine_process& cluster_fixture::node(size_t k) {
  return *nodes_[index(k)];
}

void cluster_fixture::kill9(size_t k) {
  node(k).kill9();
}

void cluster_fixture::restart(size_t k) {
  node(k).restart();
}

bool cluster_fixture::wait_cluster_up(std::chrono::milliseconds deadline) {
  bool dead = false;
  auto up = poll_until(deadline, [&] {
    for (size_t k = 1; k <= size(); ++k) {
      if (!node(k).running()) {
        dead = true;
        return true;   // stop polling: it cannot come back by itself
      }
      auto view = cluster_view(node(k).port(), name(k));
      if (!view)
        return false;
      for (size_t other = 1; other <= size(); ++other) {
        if (other == k)
          continue;
        auto it = view->find(name(other));
        if (it == view->end() || !it->second)
          return false;
      }
    }
    return true;
  });
  return up && !dead;
}

bool cluster_fixture::wait_peer_state(size_t k, const std::string& peer, bool up,
                                      std::chrono::milliseconds deadline) {
  auto& e = node(k);
  bool dead = false;
  auto seen = poll_until(deadline, [&] {
    if (!e.running()) {
      dead = true;
      return true;
    }
    auto view = cluster_view(e.port(), name(k));
    if (!view)
      return false;
    auto it = view->find(peer);
    return it != view->end() && it->second == up;
  });
  return seen && !dead;
}

} // namespace imengine::testing
