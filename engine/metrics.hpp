#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/error.hpp"
#include "engine/frame.hpp"
#include "engine/refusal.hpp"

namespace imengine {

// A Prometheus histogram with fixed upper bounds; lock-free, any thread.
class histogram {
public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  // Appends the `_bucket`, `_sum` and `_count` lines of metric `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;   // bounds_.size() + 1 (+Inf)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};                 // sum * 1e6
};

// Counters under one label whose values are fixed up front (frame types):
// slot i of `values`, and one more slot, "other", for anything else
// (rendered only if `with_other`).
class labeled_counter {
public:
  labeled_counter(const char* label, const std::vector<std::string_view>& values,
                  bool with_other = true);
  void add(size_t slot, uint64_t n = 1) noexcept {
    counts_[slot < values_.size() ? slot : values_.size()].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t at(size_t slot) const noexcept { return counts_[slot].load(std::memory_order_relaxed); }
  void render(std::string& out, const std::string& name, const std::string& help) const;

private:
  const char* label_;
  std::vector<std::string_view> values_;
  bool with_other_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;    // values_.size() + 1
};

// Appends one gauge (scrape-time figures: LMDB use, actor counts).
void render_gauge(std::string& out, const std::string& name, const std::string& help,
                  double value);

// What this node counts of one peer node.
struct peer_metrics {
  explicit peer_metrics(std::string n) : name(std::move(n)) {}
  const std::string name;
  std::atomic<int64_t> up{0};              // gauge: 1 while connected
  std::atomic<uint64_t> sent{0};           // messages this node sent to it
  std::atomic<uint64_t> received{0};       // messages this node took from it
  std::atomic<uint64_t> dial_failures{0};  // connects that did not bring it up (TLS refused, ...)
  // Requests to its actors (lookups, sends, reads), until the reply.
  histogram request_seconds{{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                             0.05, 0.1, 0.25, 1, 5}};
};

// The engine's counters and gauges, rendered by GET /metrics.
struct metrics {
  std::atomic<int64_t> connections{0};          // gauge: open WebSocket connections
  std::atomic<uint64_t> connections_total{0};
  labeled_counter frames_in{"type", client_frame_types()};
  labeled_counter frames_out{"type", server_frame_types()};
  std::atomic<uint64_t> bytes_in{0};            // WebSocket payload bytes
  std::atomic<uint64_t> bytes_out{0};
  // From a send/send_batch frame's arrival to its ack being queued.
  histogram ack_seconds{{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                         0.05, 0.1, 0.25, 1, 5}};
  std::atomic<uint64_t> bad_frames{0};          // answered with bad_frame, nothing else
  // Error frames answered, by wire code (index: errc); rendered with a
  // `code` label, one line per code.
  std::array<std::atomic<uint64_t>, static_cast<size_t>(errc::bad_config) + 1> errors{};
  void count_error(errc code) noexcept {
    auto i = static_cast<size_t>(code);
    if (i < errors.size())
      errors[i].fetch_add(1, std::memory_order_relaxed);
  }
  // Requests and connections the HTTP layer turned away, by reason;
  // rendered with a `reason` label, one line per reason.
  labeled_counter refused{"reason", refusal_names(), false};
  void count_refused(refusal r) noexcept {
    refused.add(static_cast<size_t>(r));
  }
  std::atomic<uint64_t> messages_accepted{0};   // committed by a send/send_batch
  std::atomic<uint64_t> duplicates{0};          // resends answered with dup:true
  std::atomic<uint64_t> pushes{0};              // msg frames pushed (first attempt)
  std::atomic<uint64_t> retransmits{0};
  std::atomic<uint64_t> inbox_appends{0};
  // Actors stopped because idle, by kind (slot: idle_user, idle_conversation).
  static constexpr size_t idle_user = 0, idle_conversation = 1;
  labeled_counter idle_stops{"actor", {"user", "conversation"}, false};
  std::atomic<int64_t> user_actors{0};          // gauge: live local user actors
  std::atomic<int64_t> conversation_actors{0};  // gauge: live local conversation actors
  std::atomic<int64_t> fanout_users{0};         // gauge: users in the fanout's online table
  std::atomic<int64_t> writer_queue{0};         // gauge: write jobs not yet committed
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> commit_errors{0};
  std::atomic<uint64_t> map_grows{0};           // LMDB map doubled after MDB_MAP_FULL
  histogram commit_batch_size{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
  histogram commit_seconds{{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                            0.01, 0.025, 0.05, 0.1, 0.25, 1}};

  // Cluster: timeline messages sent to other nodes' fanout actors (one
  // per node, not per member), and one entry per peer, set up once before
  // any actor runs.
  std::atomic<uint64_t> cluster_timeline_sent{0};
  std::vector<std::unique_ptr<peer_metrics>> peers;
  peer_metrics* peer(const std::string& name) const;   // nullptr: not a peer

  // Prometheus text exposition format (version 0.0.4), names prefixed
  // `imengine_`.
  std::string render() const;
};

} // namespace imengine
