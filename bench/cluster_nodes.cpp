#include "bench/cluster_nodes.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

#include "bench/stats.hpp"

namespace imbench {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ','))
    out.push_back(item);
  return out;
}

// Sum of every sample line of `name` (with or without labels), or -1.
double metric_sum(const std::string& body, const std::string& name) {
  double sum = -1;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size())
      continue;
    auto next = line[name.size()];
    if (next != ' ' && next != '{')
      continue;
    auto sp = line.rfind(' ');
    try {
      sum = (sum < 0 ? 0 : sum) + std::stod(line.substr(sp + 1));
    } catch (const std::exception&) {
    }
  }
  return sum;
}

} // namespace

std::vector<uint64_t> parse_number_list(const std::string& flag, const std::string& s) {
  std::vector<uint64_t> out;
  for (auto& item : split_commas(s)) {
    size_t end = 0;
    uint64_t v = 0;
    try {
      v = std::stoull(item, &end);
    } catch (const std::exception&) {
      end = 0;
    }
    if (item.empty() || end != item.size())
      throw std::invalid_argument("--" + flag + " needs numbers separated by commas, got " + s);
    out.push_back(v);
  }
  return out;
}

size_t wrong_nodes(const std::vector<std::shared_ptr<connection>>& conns, const node_set& nodes,
                   std::string& sample) {
  size_t n = 0;
  for (const auto& c : conns) {
    if (!c->is_ready())
      continue;
    std::string want;
    for (size_t i = 0; i < nodes.size(); ++i)
      if (nodes.ports[i] == c->config().port)
        want = nodes.names[i];
    if (c->auth_node != want) {
      if (n++ == 0)
        sample = "port " + std::to_string(c->config().port) + " is node '" + c->auth_node +
                 "', --nodes says '" + want + "'";
    }
  }
  return n;
}

size_t node_set::owner_index(const std::string& key) const {
  const auto& o = map->owner(key);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == o)
      return i;
  return 0;   // unreachable: the map is built from names
}

node_set make_node_set(const std::string& ports, const std::string& names,
                       const std::string& pids) {
  node_set ns;
  for (auto p : parse_number_list("ports", ports)) {
    if (p == 0 || p > 65535)
      throw std::invalid_argument("--ports: " + std::to_string(p) + " is not a port");
    ns.ports.push_back(static_cast<uint16_t>(p));
  }
  if (ns.ports.empty())
    throw std::invalid_argument("--ports is empty");
  if (names.empty()) {
    for (size_t i = 1; i <= ns.ports.size(); ++i)
      ns.names.push_back("n" + std::to_string(i));
  } else {
    ns.names = split_commas(names);
  }
  if (ns.names.size() != ns.ports.size())
    throw std::invalid_argument("--nodes must name one node per --ports entry");
  for (size_t i = 0; i < ns.names.size(); ++i) {
    if (!imengine::valid_node(ns.names[i]))
      throw std::invalid_argument("--nodes: bad node name '" + ns.names[i] + "'");
    for (size_t j = 0; j < i; ++j)
      if (ns.names[j] == ns.names[i])
        throw std::invalid_argument("--nodes: '" + ns.names[i] + "' twice");
  }
  if (!pids.empty()) {
    for (auto p : parse_number_list("server-pids", pids))
      ns.pids.push_back(static_cast<int>(p));
    if (ns.pids.size() != ns.ports.size())
      throw std::invalid_argument("--server-pids must give one pid per --ports entry");
  }
  std::vector<imengine::peer> peers;
  for (size_t i = 1; i < ns.names.size(); ++i)
    peers.push_back({ns.names[i], "127.0.0.1", ns.ports[i]});   // only names matter
  ns.map = std::make_unique<imengine::cluster_map>(ns.names[0], peers);
  return ns;
}

std::string http_get_body(const std::string& host, uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return {};
  }
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    auto req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (int i = 0; i < 1024; ++i) {
        auto n = read(fd, buf, sizeof(buf));
        if (n <= 0)
          break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  if (out.rfind("HTTP/1.1 200", 0) != 0)
    return {};
  auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string{} : out.substr(body + 4);
}

cluster_probe::cluster_probe(const node_set& nodes, std::string host)
    : nodes_(nodes), host_(std::move(host)) {
  for (size_t i = 0; i < nodes_.size(); ++i)
    start_.push_back(take(i));
}

cluster_probe::sample cluster_probe::take(size_t i) const {
  sample s;
  if (i < nodes_.pids.size())
    s.cpu = proc_cpu_seconds(nodes_.pids[i]);
  auto body = http_get_body(host_, nodes_.ports[i], "/metrics");
  if (!body.empty()) {
    s.sent = metric_sum(body, "imengine_cluster_sent_total");
    s.timeline = metric_sum(body, "imengine_cluster_timeline_sent_total");
  }
  return s;
}

void cluster_probe::stop() {
  if (!end_.empty())
    return;
  for (size_t i = 0; i < nodes_.size(); ++i)
    end_.push_back(take(i));
}

void cluster_probe::report(nlohmann::json& out, uint64_t messages) {
  stop();
  auto list = nlohmann::json::array();
  double sent = 0, timeline = 0, cpu = 0;
  bool sent_ok = true, timeline_ok = true, cpu_ok = !nodes_.pids.empty();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const auto& end = end_[i];
    const auto& st = start_[i];
    nlohmann::json n{{"node", nodes_.names[i]}, {"port", nodes_.ports[i]}};
    if (st.sent >= 0 && end.sent >= 0) {
      n["sent"] = end.sent - st.sent;
      sent += end.sent - st.sent;
    } else {
      sent_ok = false;
    }
    if (st.timeline >= 0 && end.timeline >= 0) {
      n["timeline_sent"] = end.timeline - st.timeline;
      timeline += end.timeline - st.timeline;
    } else {
      timeline_ok = false;
    }
    if (st.cpu >= 0 && end.cpu >= 0) {
      n["cpu_s"] = end.cpu - st.cpu;
      cpu += end.cpu - st.cpu;
    } else {
      cpu_ok = false;
    }
    list.push_back(std::move(n));
  }
  nlohmann::json c{{"nodes", list}};
  auto per_msg = [&](double v) { return messages > 0 ? v / static_cast<double>(messages) : 0.0; };
  if (sent_ok) {
    c["sent_total"] = sent;
    c["sent_per_msg"] = per_msg(sent);
  }
  if (timeline_ok) {
    c["timeline_sent_total"] = timeline;
    c["timeline_sent_per_msg"] = per_msg(timeline);
  }
  if (cpu_ok) {
    c["cpu_s"] = cpu;
    if (messages > 0)
      c["cpu_s_per_1k_msgs"] = cpu * 1000.0 / static_cast<double>(messages);
  }
  out["cluster"] = std::move(c);
}

} // namespace imbench
