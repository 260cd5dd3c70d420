#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/connection.hpp"
#include "bench/options.hpp"

// The driver core every scenario shares: io threads, a fleet of
// connections opened with bounded concurrency, windowed senders, the
// progress line and bounded waits.
namespace imbench {

struct node_set;   // bench/cluster_nodes.hpp

// What a scenario gets from main.
struct run_context {
  const options& opts;
  conn_config base;         // host, port, encoding
  unsigned threads = 1;
  std::string run_id;       // makes user names unique per run
  int server_pid = -1;      // -1: unknown, no /proc figures
  // --ports: the nodes of a cluster (base.port is the first); null with --port/--spawn.
  std::shared_ptr<const node_set> nodes;
};

// Thrown by a scenario that cannot run against this engine version.
struct not_available : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// N io threads, each with its own io_context: a connection lives on one
// thread for good, so its state needs no locks.
class io_pool {
public:
  explicit io_pool(unsigned threads);
  ~io_pool();
  boost::asio::io_context& next();
  // Lets the threads finish (connections must be closed first) and joins.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Prints a progress line on stderr once a second while a scenario waits.
class monitor {
public:
  monitor(std::string name, const totals& t);
  void tick();
  // Waits until `done()` or `limit` passes, ticking; returns done().
  bool wait_until(const std::function<bool()>& done, bench_clock::duration limit);
  double elapsed_s() const;

private:
  std::string name_;
  const totals& totals_;
  bench_clock::time_point start_, last_;
  uint64_t last_acked_ = 0, last_delivered_ = 0;
};

class fleet {
public:
  fleet(io_pool& pool, totals& t, conn_config base, unsigned concurrency);
  // `port` 0: the base config's port.
  std::shared_ptr<connection> add(const std::string& user, const std::string& device,
                                  uint16_t port = 0);
  // Starts every connection added since the last call, at most
  // `concurrency` handshakes at a time, and waits until all settled or
  // `limit` passed. Returns how many are ready.
  size_t open_all(monitor& mon, bench_clock::duration limit);
  void close_all();
  const std::vector<std::shared_ptr<connection>>& all() const { return conns_; }
  // Sums of the per-connection order checks (after the io threads stopped).
  uint64_t duplicated() const;
  uint64_t out_of_order() const;
  std::vector<uint32_t> delivery_us() const;
  bench_clock::time_point last_push() const;
  std::vector<std::string> error_samples(size_t max) const;

private:
  void launch(size_t i);
  io_pool& pool_;
  totals& totals_;
  conn_config base_;
  unsigned concurrency_;
  std::vector<std::shared_ptr<connection>> conns_;
  size_t started_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> settled_{0};
  size_t end_ = 0;
};

struct send_plan {
  std::string conv;
  uint64_t count = 0;                 // messages at most
  bench_clock::time_point stop_at;    // no new send after this
  unsigned window = 1;                // sends in flight
  size_t size = 0;                    // body bytes
  std::string cmid_prefix;
};

// Keeps `window` sends in flight on one connection until count or time
// is reached; records ack latency and the committed seqs.
class sender {
public:
  sender(std::shared_ptr<connection> c, send_plan plan, totals& t);
  void start();   // from any thread
  bool done() const { return done_.load(); }
  std::shared_ptr<connection> conn() const { return conn_; }
  // Results (after done()).
  std::vector<uint64_t> acked_seqs;
  std::vector<uint32_t> ack_us;

private:
  void fill();
  void on_frame(const json& f);
  std::shared_ptr<connection> conn_;
  send_plan plan_;
  totals& totals_;
  uint64_t issued_ = 0;
  std::unordered_map<uint64_t, bench_clock::time_point> in_flight_;   // by req
  std::atomic<bool> done_{false};
};

// One sender on each of the first `n` connections, all with `plan` (its
// cmid prefix gets the sender's index), started.
std::vector<std::unique_ptr<sender>> start_senders(const std::vector<std::shared_ptr<connection>>& from,
                                                   size_t n, const send_plan& plan, totals& t);

// Waits until every sender is done or `limit` passed; true when all are.
bool wait_senders(monitor& mon, const std::vector<std::unique_ptr<sender>>& senders,
                  bench_clock::duration limit);

} // namespace imbench

namespace imbench {

// Timeline conversations (rooms, large groups): a member that got `notify`
// instead of pushes pulls, with `history`, every seq of `expected` (sorted)
// it still misses at or below the highest seq announced to it (what the
// connection's own pulls on `notify` could not place, e.g. a gap before
// its first live push). A seq missed but
// never announced stays missing: it counts as lost. Runs on the io threads
// (replaces on_frame; senders must be done); waits up to `limit`.
struct pull_outcome {
  uint64_t members = 0;     // connections that had to pull
  uint64_t requests = 0;    // history requests sent
  bool complete = true;     // every pull finished in time
};
pull_outcome pull_announced(fleet& f, monitor& mon, const std::string& conv,
                            const std::vector<uint64_t>& expected, bench_clock::duration limit);

// Deliveries of `expected` (sorted) that no connection has yet, neither
// received nor announced to it by a notify; counted on each connection's io
// thread. UINT64_MAX if the threads did not all answer within 1 s.
uint64_t unsettled(const fleet& f, const std::string& conv, const std::vector<uint64_t>& expected);

// Waits up to `limit` until every connection has every seq of `expected`
// (sorted) or got it announced: the cheap counters first, the exact scan
// every 100 ms. `copies` = deliveries + echoes expected in total.
bool wait_settled(const fleet& f, monitor& mon, const totals& t, uint64_t copies,
                  const std::string& conv, const std::vector<uint64_t>& expected,
                  bench_clock::duration limit);

// The end of a run with one conversation: after the senders, every seq
// they got acked (sorted), the pulls of notified members and the ack
// latencies. When the senders finished it waits up to `grace` for every
// copy (`copies` deliveries + echoes) and, with `pull`, lets notified
// members pull; then it closes the fleet and stops the io threads (the
// results of senders that did not finish are read only after that).
struct run_end {
  std::vector<uint64_t> committed;
  pull_outcome pull;
  std::vector<uint32_t> ack_us;
};
run_end end_run(fleet& conns, io_pool& pool, monitor& mon, const totals& t, uint64_t copies,
                const std::string& conv, const std::vector<std::unique_ptr<sender>>& senders,
                bool finished, bool pull, bench_clock::duration grace);

// Spread of each message of `conv` over the members that received it (the
// sender excluded): last arrival − first arrival. `sender_of[seq]` is the
// index in f.all() of the sending connection. Needs record_arrivals; only
// messages every other member received count. Microseconds.
std::vector<uint32_t> arrival_spread_us(const fleet& f, const std::string& conv,
                                        const std::vector<uint64_t>& expected,
                                        const std::unordered_map<uint64_t, size_t>& sender_of);

// The fields every summary has: scenario, params, counters, order checks,
// errors with a few samples. `ok` false marks a run that did not complete.
json base_summary(const std::string& scenario, json params, const totals& t, const fleet& f);

} // namespace imbench
