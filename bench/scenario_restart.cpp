// imrestart: restart-to-ready time of the engine on a filled data directory
// (bench/fill_store.cpp writes one, with DIR/fill.manifest.json naming a
// probe conversation). Each run execs `imengine --data=DIR`, then measures
// from the exec:
//   health: the first GET /healthz answered 200 (polled every 1 ms)
//   serve:  auth + `history` of the probe conversation (its last seq must be
//           the one known) + a `send` acked with seq = last + 1
// and ends the engine with SIGKILL: the next run is a real crash restart.
// A priming run first kills the engine in the middle of a send burst.
// `--cold` drops the page cache (needs root) before each measured run;
// `--wait-recovery` also times the fan-out recovery of conversations a
// crash left unfinished (until the inbox copy counter stops moving).
//
// The last known seq of the probe survives between invocations in
// DIR/restart.state, so warm and cold series check the same conversation.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/ws_client.hpp"

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
namespace fs = std::filesystem;
namespace net = imengine::net;

struct options {
  std::string engine = "./build-rst/engine/imengine";
  std::string data;
  uint16_t port = 18931;
  int runs = 3;
  bool cold = false;
  bool prime = true;
  int burst = 200;   // sends in flight when the priming run is killed
  bool wait_recovery = false;   // after the send, wait for fan-out recovery to end
  std::vector<std::string> engine_args;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "imrestart: " << why << "\n"
            << "usage: imrestart --data=DIR [--engine=PATH] [--port=N] [--runs=N] [--cold]\n"
               "  [--no-prime] [--burst=N] [--wait-recovery] [-- extra engine flags]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i)
        o.engine_args.emplace_back(argv[i]);
      break;
    }
    if (a == "--cold") { o.cold = true; continue; }
    if (a == "--no-prime") { o.prime = false; continue; }
    if (a == "--wait-recovery") { o.wait_recovery = true; continue; }
    auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos)
      usage("bad argument " + a);
    auto k = a.substr(2, eq - 2);
    auto v = a.substr(eq + 1);
    if (k == "engine") o.engine = v;
    else if (k == "data") o.data = v;
    else if (k == "port") o.port = static_cast<uint16_t>(std::stoul(v));
    else if (k == "runs") o.runs = std::stoi(v);
    else if (k == "burst") o.burst = std::stoi(v);
    else usage("unknown option --" + k);
  }
  if (o.data.empty())
    usage("--data is required");
  if (o.runs < 1 || o.runs > 20 || o.burst < 0 || o.burst > 10000)
    usage("--runs is 1..20, --burst 0..10000");
  return o;
}

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

// One GET on a fresh connection: the whole answer, or "" on failure.
std::string http_get(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{1, 0};   // an engine that accepts but never answers fails the try
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    auto req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (int i = 0; i < 1024; ++i) {   // bounded: 4 MiB at most
        auto n = read(fd, buf, sizeof(buf));
        if (n <= 0)
          break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return out;
}

bool healthz(uint16_t port) { return http_get(port, "/healthz").rfind("HTTP/1.1 200", 0) == 0; }

// imengine_inbox_appends_total from /metrics, or -1.
double inbox_appends(uint16_t port) {
  auto body = http_get(port, "/metrics");
  const std::string key = "\nimengine_inbox_appends_total ";
  auto at = body.find(key);
  return at == std::string::npos ? -1 : std::stod(body.substr(at + key.size()));
}

// Process counters of the engine at "ready": what its startup cost.
struct proc_sample {
  uint64_t read_bytes = 0;   // /proc/PID/io: bytes fetched from the disk
  uint64_t majflt = 0;       // major page faults (mmap'd LMDB pages read in)
  uint64_t rss_kb = 0;
  uint64_t rss_anon_kb = 0;  // heap: actors, buffers
  uint64_t rss_file_kb = 0;  // mapped LMDB (and binary) pages touched
  double cpu_ms = 0;         // user + system
};

proc_sample sample(int pid) {
  proc_sample s;
  auto dir = "/proc/" + std::to_string(pid);
  std::ifstream io(dir + "/io");
  for (std::string k; io >> k;) {
    uint64_t v = 0;
    io >> v;
    if (k == "read_bytes:")
      s.read_bytes = v;
  }
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);) {
    auto value = [&] { return std::stoull(line.substr(line.find(':') + 1)); };
    if (line.rfind("RssAnon:", 0) == 0)
      s.rss_anon_kb = value();
    else if (line.rfind("RssFile:", 0) == 0)
      s.rss_file_kb = value();
  }
  std::ifstream st(dir + "/stat");
  std::string line;
  std::getline(st, line);
  auto close_paren = line.rfind(')');
  if (close_paren != std::string::npos) {
    std::istringstream f(line.substr(close_paren + 2));
    std::vector<std::string> fields;
    for (std::string x; f >> x && fields.size() < 24;)
      fields.push_back(x);
    // fields[0] is state (field 3): majflt is field 12, utime 14, stime 15, rss 24.
    if (fields.size() >= 22) {
      auto tick = static_cast<double>(sysconf(_SC_CLK_TCK));
      s.majflt = std::stoull(fields[9]);
      s.cpu_ms = (std::stod(fields[11]) + std::stod(fields[12])) * 1000.0 / tick;
      s.rss_kb = std::stoull(fields[21]) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
    }
  }
  return s;
}

class engine_proc {
public:
  engine_proc(const options& o, const std::string& log) {
    std::vector<std::string> args{o.engine, "--host=127.0.0.1", "--port=" + std::to_string(o.port),
                                  "--data=" + o.data, "--auth=none"};
    args.insert(args.end(), o.engine_args.begin(), o.engine_args.end());
    started_ = steady::now();
    pid_ = fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      std::vector<char*> argv;
      for (auto& s : args)
        argv.push_back(s.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~engine_proc() { kill_now(); }
  engine_proc(const engine_proc&) = delete;
  engine_proc& operator=(const engine_proc&) = delete;

  int pid() const { return pid_; }
  steady::time_point started() const { return started_; }
  bool exited() {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_)
      pid_ = -1;
    return pid_ <= 0;
  }
  // SIGKILL: a crash, nothing flushed by the engine itself.
  void kill_now() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

private:
  int pid_ = -1;
  steady::time_point started_;
};

struct probe {
  std::string conv;
  std::string user;
  uint64_t last_seq = 0;
};

std::string state_path(const options& o) { return (fs::path(o.data) / "restart.state").string(); }

probe load_probe(const options& o) {
  std::ifstream mf(fs::path(o.data) / "fill.manifest.json");
  if (!mf)
    usage("no fill.manifest.json in " + o.data + " (fill it with imfill)");
  auto m = json::parse(mf);
  probe p{m.at("probe_conv").get<std::string>(), m.at("probe_user").get<std::string>(),
          m.at("probe_last_seq").get<uint64_t>()};
  std::ifstream sf(state_path(o));
  if (sf) {
    auto s = json::parse(sf);
    p.last_seq = s.at("last_seq").get<uint64_t>();
  }
  return p;
}

void save_probe(const options& o, const probe& p) {
  std::ofstream(state_path(o)) << json{{"last_seq", p.last_seq}}.dump() << "\n";
}

// The machine is shared: the 1-minute load average tells how noisy a run was.
double loadavg1() {
  double l = 0;
  std::ifstream("/proc/loadavg") >> l;
  return l;
}

bool drop_caches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!f)
    return false;
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

// Polls /healthz for up to 60 s; returns ms from exec, or a negative value.
double wait_healthy(engine_proc& e, uint16_t port) {
  auto deadline = e.started() + std::chrono::seconds(60);
  while (steady::now() < deadline) {
    if (healthz(port))
      return ms_since(e.started());
    if (e.exited())
      return -1;
    std::this_thread::sleep_for(ms(1));
  }
  return -1;
}

json last_message(net::ws_client& c, const std::string& conv) {
  auto r = c.request({{"t", "history"}, {"conv", conv}, {"before", UINT64_MAX / 2}, {"limit", 1}},
                     ms(30000));
  if (r.value("t", "") != "history_result" || !r.contains("msgs"))
    throw std::runtime_error("history failed: " + r.dump());
  return r["msgs"].empty() ? json{} : r["msgs"][0];
}

struct run_result {
  double health_ms = 0, auth_ms = 0, history_ms = 0, send_ms = 0;
  double recovered_ms = 0;   // --wait-recovery: the last inbox copy made
  double appends = 0;        // inbox copies made by then
  proc_sample at_ready;
  bool ok = false;
  std::string error;
};

run_result measured_run(const options& o, probe& p, const std::string& log, int n) {
  run_result r;
  engine_proc e(o, log);
  r.health_ms = wait_healthy(e, o.port);
  if (r.health_ms < 0) {
    r.error = "engine never became healthy (log " + log + ")";
    return r;
  }
  try {
    net::ws_client c("127.0.0.1", o.port);
    auto a = c.request({{"t", "auth"}, {"user", p.user}, {"device", "d1"}, {"token", ""}},
                       ms(30000));
    if (a.value("t", "") != "auth_ok")
      throw std::runtime_error("auth failed: " + a.dump());
    r.auth_ms = ms_since(e.started());
    auto last = last_message(c, p.conv);
    r.history_ms = ms_since(e.started());
    auto seq = last.is_null() ? 0 : last.value("seq", uint64_t{0});
    if (seq != p.last_seq)
      throw std::runtime_error("history: last seq " + std::to_string(seq) + ", expected "
                               + std::to_string(p.last_seq));
    auto cmid = "restart-" + std::to_string(getpid()) + "-" + std::to_string(n) + "-"
                + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    auto ack = c.request({{"t", "send"}, {"conv", p.conv}, {"cmid", cmid}, {"type", "text"},
                          {"body", "after restart " + std::to_string(n)}, {"ex", json::object()}},
                         ms(30000));
    r.send_ms = ms_since(e.started());
    r.at_ready = sample(e.pid());
    if (ack.value("t", "") != "ack" || ack.value("seq", uint64_t{0}) != p.last_seq + 1)
      throw std::runtime_error("send: " + ack.dump() + ", expected seq "
                               + std::to_string(p.last_seq + 1));
    p.last_seq++;
    save_probe(o, p);
    r.ok = true;
    if (o.wait_recovery) {
      // Fan-out recovery of unfinished conversations runs after /healthz;
      // it is over when the inbox copy counter has not moved for 2 s (60 s
      // at most). recovered_ms: its last move.
      auto deadline = e.started() + std::chrono::seconds(60);
      double last = inbox_appends(o.port);
      auto moved = steady::now();
      while (steady::now() < deadline && steady::now() - moved < std::chrono::seconds(2)) {
        std::this_thread::sleep_for(ms(10));
        auto now = inbox_appends(o.port);
        if (now != last) {
          last = now;
          moved = steady::now();
        }
      }
      r.recovered_ms = steady::now() < deadline
                         ? std::chrono::duration<double, std::milli>(moved - e.started()).count()
                         : -1;
      r.appends = last;
      r.at_ready = sample(e.pid());
    }
  } catch (const std::exception& ex) {
    r.error = ex.what();
  }
  e.kill_now();
  return r;
}

// Starts the engine, puts a burst of sends in flight and kills it in the
// middle: the next start recovers from a crash, not from a clean stop.
bool priming_run(const options& o, probe& p, const std::string& log) {
  engine_proc e(o, log);
  if (wait_healthy(e, o.port) < 0) {
    std::cerr << "imrestart: priming: engine never became healthy (log " << log << ")\n";
    return false;
  }
  uint64_t acked = p.last_seq;
  try {
    net::ws_client c("127.0.0.1", o.port);
    c.request({{"t", "auth"}, {"user", p.user}, {"device", "d1"}, {"token", ""}}, ms(30000));
    auto last = last_message(c, p.conv);
    auto seq = last.is_null() ? 0 : last.value("seq", uint64_t{0});
    if (seq != p.last_seq) {
      std::cerr << "imrestart: priming: last seq " << seq << ", expected " << p.last_seq << "\n";
      return false;
    }
    auto tag = std::to_string(getpid()) + "-"
               + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    for (int i = 0; i < o.burst; ++i)
      c.send({{"t", "send"}, {"req", 1000 + i}, {"conv", p.conv}, {"cmid", "prime-" + tag + "-" + std::to_string(i)},
              {"type", "text"}, {"body", "burst " + std::to_string(i)}, {"ex", json::object()}});
    // Kill once about half the burst is acked (bounded wait).
    auto deadline = steady::now() + std::chrono::seconds(10);
    int acks = 0;
    while (acks < o.burst / 2 && steady::now() < deadline) {
      auto f = c.next(ms(100));
      if (f && f->value("t", "") == "ack") {
        acks++;
        acked = std::max(acked, f->value("seq", uint64_t{0}));
      }
    }
    e.kill_now();
    std::cerr << "imrestart: priming: killed after " << acks << " of " << o.burst
              << " acks (highest acked seq " << acked << ")\n";
  } catch (const std::exception& ex) {
    std::cerr << "imrestart: priming: " << ex.what() << "\n";
    return false;
  }
  // Learn the seq the crash left (acked ones must be there), on a fresh
  // start that is not measured.
  engine_proc check(o, log);
  if (wait_healthy(check, o.port) < 0)
    return false;
  try {
    net::ws_client c("127.0.0.1", o.port);
    c.request({{"t", "auth"}, {"user", p.user}, {"device", "d1"}, {"token", ""}}, ms(30000));
    auto last = last_message(c, p.conv);
    auto seq = last.is_null() ? 0 : last.value("seq", uint64_t{0});
    if (seq < acked || seq > p.last_seq + static_cast<uint64_t>(o.burst)) {
      std::cerr << "imrestart: priming: after the crash last seq " << seq << ", acked " << acked
                << "\n";
      return false;
    }
    std::cerr << "imrestart: priming: after the crash last seq " << seq << " (>= acked " << acked
              << ")\n";
    p.last_seq = seq;
    save_probe(o, p);
  } catch (const std::exception& ex) {
    std::cerr << "imrestart: priming check: " << ex.what() << "\n";
    return false;
  }
  check.kill_now();
  return true;
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  auto p = load_probe(o);
  auto log = "/tmp/imrestart-" + std::to_string(getpid()) + ".log";
  std::cerr << "imrestart: probe " << p.conv << " (user " << p.user << ", last seq " << p.last_seq
            << "), engine log " << log << "\n";
  if (o.prime && !priming_run(o, p, log))
    return 1;
  if (o.cold && !drop_caches()) {
    std::cerr << "imrestart: cannot drop the page cache (needs root): --cold unavailable\n";
    return 1;
  }
  json results = json::array();
  int failures = 0;
  for (int n = 0; n < o.runs; ++n) {
    if (o.cold)
      drop_caches();
    auto r = measured_run(o, p, log, n);
    if (!r.ok)
      failures++;
    json j{{"run", n},
           {"mode", o.cold ? "cold" : "warm"},
           {"ok", r.ok},
           {"health_ms", r.health_ms},
           {"auth_ms", r.auth_ms},
           {"history_ms", r.history_ms},
           {"send_acked_ms", r.send_ms},
           {"recovered_ms", r.recovered_ms},
           {"inbox_appends", r.appends},
           {"engine_read_bytes", r.at_ready.read_bytes},
           {"engine_majflt", r.at_ready.majflt},
           {"engine_rss_kb", r.at_ready.rss_kb},
           {"engine_rss_anon_kb", r.at_ready.rss_anon_kb},
           {"engine_rss_file_kb", r.at_ready.rss_file_kb},
           {"engine_cpu_ms", r.at_ready.cpu_ms},
           {"last_seq", p.last_seq},
           {"loadavg1", loadavg1()}};
    if (!r.ok)
      j["error"] = r.error;
    std::cout << j.dump() << std::endl;
    results.push_back(j);
  }
  auto summary = [&](const char* key) {
    std::vector<double> v;
    for (const auto& j : results)
      if (j["ok"].get<bool>())
        v.push_back(j[key].get<double>());
    if (v.empty())
      return std::string("-");
    std::sort(v.begin(), v.end());
    char buf[96];
    std::snprintf(buf, sizeof(buf), "min %.0f / median %.0f / max %.0f ms", v.front(),
                  v[v.size() / 2], v.back());
    return std::string(buf);
  };
  std::cerr << "imrestart: " << (o.cold ? "cold" : "warm") << " health " << summary("health_ms")
            << "; send acked " << summary("send_acked_ms") << "\n";
  std::cerr << "imrestart: " << (o.runs - failures) << "/" << o.runs << " runs ok\n";
  return failures == 0 ? 0 : 1;
}
