#include "bench/stats.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace imbench {

nlohmann::json latency_summary(std::vector<uint32_t>& us) {
  nlohmann::json out{{"n", us.size()}};
  if (us.empty())
    return out;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    auto i = static_cast<size_t>(q * static_cast<double>(us.size() - 1) + 0.5);
    return us[std::min(i, us.size() - 1)] / 1000.0;
  };
  out["p50"] = at(0.50);
  out["p90"] = at(0.90);
  out["p99"] = at(0.99);
  out["p999"] = at(0.999);
  out["max"] = us.back() / 1000.0;
  // The CDF uses the same nearest-rank quantile as the percentiles above, so
  // its 0.5/0.99/0.999 points equal p50/p99/p999. Linear steps for the body;
  // log-spaced fractions for the tail, where a latency plot needs detail.
  auto cdf = nlohmann::json::array();
  auto point = [&](double q) {
    q = std::round(q * 1e6) / 1e6;   // 0.99 not 0.9899999999999999 in the JSON
    cdf.push_back({at(q), q});
  };
  for (int i = 0; i < 36; ++i)        // 0 … 0.875
    point(i * 0.025);
  for (int i = 0; i < 30; ++i) {      // 1 - 10^-(1 + i/10): 0.9 … 0.9999
    auto q = 1.0 - std::pow(10.0, -1.0 - i / 10.0);
    // Past the last fraction with a sample beyond it, points would all
    // repeat the max: a short run stops its tail early.
    if ((1.0 - q) * static_cast<double>(us.size()) < 1.0)
      break;
    point(q);
  }
  cdf.push_back({us.back() / 1000.0, 1.0});
  out["cdf"] = std::move(cdf);
  return out;
}

double proc_cpu_seconds(int pid) {
  if (pid <= 0)
    return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line))
    return -1;
  // The command name may hold spaces: fields are counted after its ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {   // field 3 is the state
    if (i == 14)
      utime = std::stoull(field);
    if (i == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long proc_rss_kb(int pid) {
  if (pid <= 0)
    return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

void cpu_probe::report(nlohmann::json& out, uint64_t messages) const {
  if (start_ < 0)
    return;
  auto end = proc_cpu_seconds(pid_);
  if (end < 0)
    return;
  out["cpu_s"] = end - start_;
  if (messages > 0)
    out["cpu_s_per_1k_msgs"] = (end - start_) * 1000.0 / static_cast<double>(messages);
}

} // namespace imbench
