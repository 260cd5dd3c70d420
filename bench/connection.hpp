#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

// One asynchronous WebSocket client connection of the load generator. The
// Beast stream lives in connection.cpp only, so scenario files compile fast.
namespace imbench {

using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

// Counters every connection of a run adds to; read by the progress line.
struct totals {
  std::atomic<uint64_t> sent{0}, acked{0}, delivered{0}, echoed{0}, errors{0};
  std::atomic<uint64_t> ready{0}, failed{0};
  // Timeline only: `notify` frames received, and other users' messages
  // pulled with `history` to fill the gaps they announced.
  std::atomic<uint64_t> notified{0}, pulled{0};
};

// What one connection saw of one conversation. `seen` is indexed by seq so
// duplicates and reorderings are told apart exactly.
struct conv_track {
  uint64_t last = 0;
  uint64_t received = 0;
  uint64_t notified = 0;    // highest seq a `notify` announced
  uint64_t first = 0;       // lowest seq pushed live; 0: none yet
  uint64_t pull_req = 0;    // `history` in flight for a notified gap
  uint64_t pulled_to = 0;   // notified gaps up to here were asked for
  std::vector<uint8_t> seen;
  // With conn_config::record_arrivals: arrival_stamp() per seq, 0 = none.
  std::vector<uint32_t> arrival;
};

struct conn_config {
  std::string host;
  uint16_t port = 0;
  bool msgpack = false;
  std::string user;
  std::string device;
  bool record_arrivals = false;   // per-seq arrival times (room spread)
};

// Body of a bench message: "T<send time in ns>|" padded to the wanted size,
// so the receiver measures latency on the same steady clock.
std::string make_body(bench_clock::time_point sent, size_t size);
// Send time embedded by make_body, or nullopt-like 0 for foreign bodies.
int64_t body_sent_ns(const std::string& body);
int64_t now_ns();
// Microseconds since the process's first call, plus 1 (0 means "never").
uint32_t arrival_stamp(bench_clock::time_point t);

class connection : public std::enable_shared_from_this<connection> {
public:
  using frame_fn = std::function<void(connection&, const json&)>;

  static std::shared_ptr<connection> create(boost::asio::io_context& io, conn_config cfg,
                                            totals& t);
  ~connection();

  // Connects, upgrades and authenticates; `settled(true)` once auth_ok
  // arrived, `settled(false)` on any failure before that. Runs on the
  // connection's io thread, like every callback.
  void start(std::function<void(bool)> settled);
  // Runs `fn` on the connection's io thread.
  void post(std::function<void()> fn);
  // Sends a frame (io thread only); writes are queued, one in flight.
  void send(const json& frame);
  // Cumulative inbox ack, coalesced with others while a write is in flight.
  void ack(uint64_t iseq);
  // Records a message pushed live (`live`: acked automatically) or listed
  // by sync/history: order, duplicates, latency.
  void record_push(const json& msg, bool live);
  // Records a message pulled with `history` to fill a hole of the live
  // stream: not an order violation, but a second copy is a duplicate.
  void record_pulled(const json& msg);
  // Closes the socket (from any thread); no error is counted afterwards.
  void close();

  uint64_t next_req() { return ++req_; }
  const conn_config& config() const { return cfg_; }
  bool is_ready() const { return ready_; }

  // Called for every frame after auth, after built-in push handling.
  frame_fn on_frame;

  // Results: read them on the io thread or after the io threads stopped.
  uint64_t auth_iseq = 0;    // inbox head reported by auth_ok
  std::string auth_node;     // the node auth_ok named (engines that say)
  uint64_t last_iseq = 0;          // of live pushes
  uint64_t last_pulled_iseq = 0;   // of messages recorded from sync pages
  uint64_t duplicated = 0;
  uint64_t out_of_order = 0;
  uint64_t notifies = 0;           // `notify` frames received
  std::unordered_map<std::string, conv_track> convs;
  std::vector<uint32_t> delivery_us;   // latency of pushes from other users
  bench_clock::time_point last_push{};
  std::string first_error;
  // Seqs of `conv` in `expected` this connection never received.
  uint64_t missing(const std::string& conv, const std::vector<uint64_t>& expected) const;

private:
  struct impl;
  connection(boost::asio::io_context& io, conn_config cfg, totals& t);
  void fail(const std::string& what);
  void handle(const json& f);
  void flush();
  std::string encode(const json& f) const;
  // Marks `seq` of `track` received; returns false if it was already.
  bool mark_seen(conv_track& track, uint64_t seq, bench_clock::time_point now);
  // On `notify`: asks `history` for the next hole of the live stream at or
  // below the announced seq, one request per conversation at a time, as a
  // client would. Holes before the first live push are left to the
  // scenario's final pull_announced (the stream's start is unknown here).
  void pull_gap(const std::string& conv);
  void on_pulled(const json& f);
  std::unordered_map<uint64_t, std::string> pulls_;   // req -> conv
  // Counts a new message: true if another user's (a delivery), false if an echo.
  bool count_delivery(const json& msg, bench_clock::time_point now);

  std::unique_ptr<impl> impl_;
  conn_config cfg_;
  totals& totals_;
  uint64_t req_ = 1;   // 1 is the auth request
  bool ready_ = false;
  bool closing_ = false;
  bool writing_ = false;
  uint64_t ack_wanted_ = 0;
  uint64_t ack_sent_ = 0;
  std::function<void(bool)> settled_;
};

} // namespace imbench
