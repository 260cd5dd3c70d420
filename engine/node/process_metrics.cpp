#include "engine/node/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/node/memory.hpp"

namespace imengine {

namespace {

// The fields of /proc/self/stat after the command name (which may hold
// spaces, hence from the last ')'): index 0 is field 3, `state`.
std::vector<std::string> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;)
    fields.push_back(f);
  return fields;
}

double field(const std::vector<std::string>& f, size_t proc_index) {
  auto i = proc_index - 3;   // proc(5) numbers fields from 1; ours start at 3
  return i < f.size() ? std::stod(f[i]) : 0.0;
}

// Seconds since the epoch at boot, for starttime (ticks since boot).
double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double t = 0;
      in >> t;
      return t;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

size_t open_fds() {
  std::error_code ec;
  size_t n = 0;
  for (std::filesystem::directory_iterator i("/proc/self/fd", ec), end; !ec && i != end;
       i.increment(ec))
    ++n;
  return n > 0 ? n - 1 : 0;   // the iterator's own descriptor
}

} // namespace

void render_process_metrics(std::string& out, const std::string& version) {
  auto f = stat_fields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  out += "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n"
         "# TYPE process_cpu_seconds_total counter\n";
  out += "process_cpu_seconds_total " + std::to_string((field(f, 14) + field(f, 15)) / ticks)
         + "\n";
  render_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
               field(f, 24) * page);
  render_gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
               field(f, 23));
  render_gauge(out, "process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.",
               boot_time() + field(f, 22) / ticks);
  render_gauge(out, "process_open_fds", "Number of open file descriptors.",
               static_cast<double>(open_fds()));
  rlimit fds{};
  getrlimit(RLIMIT_NOFILE, &fds);
  render_gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
               static_cast<double>(fds.rlim_cur));
  out += "# HELP imengine_build_info The engine's version and allocator; always 1.\n"
         "# TYPE imengine_build_info gauge\n";
  out += "imengine_build_info{version=\"" + version + "\",allocator=\"" + allocator_name()
         + "\"} 1\n";
}

} // namespace imengine
