#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

// Latency percentiles and the server's /proc figures.
namespace imbench {

// {"n","p50","p90","p99","p999","max","cdf"} in milliseconds from
// microsecond samples (sorted in place). "cdf" is [[ms, fraction], ...],
// up to 67 points: every 0.025 up to 0.875, then 10 per decade of the tail
// (0.9 … 0.9999, as far as the sample count resolves), then [max, 1]: enough
// to plot the distribution from the summary alone (bench/report).
nlohmann::json latency_summary(std::vector<uint32_t>& us);

// The p-quantile (0..1) of samples, sorted in place; 0 for none.
inline double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

// utime+stime of a process in seconds, or -1 when it cannot be read.
double proc_cpu_seconds(int pid);
// VmRSS of a process in KiB, or -1.
long proc_rss_kb(int pid);

// CPU of the server over one measured phase.
class cpu_probe {
public:
  explicit cpu_probe(int pid) : pid_(pid), start_(proc_cpu_seconds(pid)) {}
  // Adds "cpu_s" and "cpu_s_per_1k_msgs" to `out` when the pid is known.
  void report(nlohmann::json& out, uint64_t messages) const;

private:
  int pid_;
  double start_;
};

} // namespace imbench
