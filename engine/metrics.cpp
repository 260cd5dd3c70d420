#include "engine/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace imengine {

namespace {

// Shortest fixed-point text that reads back as `v` ("0.00025", not
// "2.5e-04" or "0.00025000000000000001"), as Prometheus clients print bounds.
std::string format_double(double v) {
  char buf[128];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  if (ec != std::errc{})
    return std::to_string(v);
  return std::string(buf, end);
}

void header(std::string& out, const std::string& name, const std::string& help,
            const char* type) {
  out += "# HELP " + name + " " + help + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

template <class T>
void sample(std::string& out, const std::string& name, const std::string& help,
            const char* type, const std::atomic<T>& value) {
  header(out, name, help, type);
  out += name + " " + std::to_string(value.load(std::memory_order_relaxed)) + "\n";
}

} // namespace

labeled_counter::labeled_counter(const char* label, const std::vector<std::string_view>& values,
                                 bool with_other)
  : label_(label), values_(values), with_other_(with_other), counts_(new std::atomic<uint64_t>[values.size() + 1]) {
  for (size_t i = 0; i <= values_.size(); ++i)
    counts_[i].store(0, std::memory_order_relaxed);
}

void labeled_counter::render(std::string& out, const std::string& name,
                             const std::string& help) const {
  header(out, name, help, "counter");
  for (size_t i = 0; i < values_.size() + (with_other_ ? 1 : 0); ++i)
    out += name + "{" + label_ + "=\"" + std::string(i < values_.size() ? values_[i] : "other")
           + "\"} " + std::to_string(at(i)) + "\n";
}

void render_gauge(std::string& out, const std::string& name, const std::string& help,
                  double value) {
  header(out, name, help, "gauge");
  out += name + " " + format_double(value) + "\n";
}

histogram::histogram(std::vector<double> bounds)
  : bounds_(std::move(bounds)),
    buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) noexcept {
  // Buckets are stored per interval and summed when rendered, so that an
  // observation is one increment, not one per bound above it. NaN fails
  // every comparison and lands in +Inf.
  auto i = static_cast<size_t>(
    std::find_if(bounds_.begin(), bounds_.end(), [v](double b) { return v <= b; })
    - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  if (v > 0 && v < 1e12)   // keeps the micros in range; NaN fails too
    sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)),
                          std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void histogram::render(std::string& out, const std::string& name,
                       const std::string& help) const {
  header(out, name, help, "histogram");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    auto le = i < bounds_.size() ? format_double(bounds_[i]) : std::string{"+Inf"};
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  auto sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  out += name + "_sum " + format_double(sum) + "\n";
  // The +Inf bucket is the count by definition; printing the same figure
  // keeps a scrape consistent even while observe() runs concurrently.
  out += name + "_count " + std::to_string(cumulative) + "\n";
}

std::string metrics::render() const {
  std::string out;
  out.reserve(4096);
  // Not `imengine_connections`: that is the family of the _total counter.
  sample(out, "imengine_connections_open", "Open WebSocket connections.", "gauge", connections);
  sample(out, "imengine_connections_total", "WebSocket connections accepted.", "counter",
         connections_total);
  frames_in.render(out, "imengine_frames_in_total",
                   "Frames received from clients, by type (other: unknown or undecodable).");
  frames_out.render(out, "imengine_frames_out_total", "Frames sent to clients, by type.");
  sample(out, "imengine_bytes_in_total", "WebSocket message bytes received.", "counter",
         bytes_in);
  sample(out, "imengine_bytes_out_total", "WebSocket message bytes sent (retransmits included).",
         "counter", bytes_out);
  ack_seconds.render(out, "imengine_ack_seconds",
                     "From a send or send_batch frame's arrival to its ack, committed.");
  sample(out, "imengine_bad_frames_total", "Frames answered with bad_frame.", "counter",
         bad_frames);
  header(out, "imengine_errors_total", "Error frames sent to clients, by code.", "counter");
  for (size_t i = 1; i < errors.size(); ++i) {
    auto code = static_cast<errc>(i);
    if (code == errc::bad_config)
      continue;   // never on the wire
    out += "imengine_errors_total{code=\"" + std::string(to_string(code)) + "\"} "
           + std::to_string(errors[i].load(std::memory_order_relaxed)) + "\n";
  }
  refused.render(out, "imengine_refused_total",
                 "Requests and connections refused by the HTTP layer, by reason.");
  sample(out, "imengine_messages_accepted_total", "Messages committed by send/send_batch.",
         "counter", messages_accepted);
  sample(out, "imengine_duplicates_total", "Resends answered with dup:true.", "counter",
         duplicates);
  sample(out, "imengine_pushes_total", "msg frames pushed (first attempt).", "counter",
         pushes);
  sample(out, "imengine_retransmits_total", "msg frames pushed again after no ack.",
         "counter", retransmits);
  sample(out, "imengine_inbox_appends_total", "Messages appended to user inboxes.",
         "counter", inbox_appends);
  sample(out, "imengine_user_actors", "Live user actors on this node.", "gauge", user_actors);
  sample(out, "imengine_conversation_actors", "Live conversation actors on this node.", "gauge",
         conversation_actors);
  sample(out, "imengine_fanout_online_users",
         "Users with a live connection in this node's fanout table.", "gauge", fanout_users);
  sample(out, "imengine_storage_queue", "Write jobs waiting for their commit.", "gauge",
         writer_queue);
  idle_stops.render(out, "imengine_idle_stops_total", "Actors stopped because idle, by kind.");
  sample(out, "imengine_commits_total", "Storage write transactions committed.", "counter",
         commits);
  sample(out, "imengine_commit_errors_total", "Storage write transactions that failed.",
         "counter", commit_errors);
  sample(out, "imengine_map_grows_total", "LMDB map doublings after the map was full.",
         "counter", map_grows);
  commit_batch_size.render(out, "imengine_commit_batch_size",
                           "Requests per storage write transaction.");
  commit_seconds.render(out, "imengine_commit_seconds",
                        "Duration of a storage write transaction including fsync.");
  if (peers.empty())
    return out;
  sample(out, "imengine_cluster_timeline_sent_total",
         "Timeline messages sent to other nodes' fanout actors.", "counter",
         cluster_timeline_sent);
  auto per_peer = [&](const char* name, const char* help, const char* type, auto field) {
    header(out, name, help, type);
    for (const auto& p : peers)
      out += std::string(name) + "{peer=\"" + p->name + "\"} "
             + std::to_string(((*p).*field).load(std::memory_order_relaxed)) + "\n";
  };
  per_peer("imengine_cluster_peer_up", "1 while the peer node is connected.", "gauge",
           &peer_metrics::up);
  per_peer("imengine_cluster_sent_total", "Messages sent to the peer node.", "counter",
           &peer_metrics::sent);
  per_peer("imengine_cluster_received_total", "Messages taken from the peer node.", "counter",
           &peer_metrics::received);
  per_peer("imengine_cluster_dial_failures_total",
           "Connects to the peer node that failed (unreachable, TLS refused, wrong node).",
           "counter", &peer_metrics::dial_failures);
  for (const auto& p : peers) {
    // One histogram per peer (the renderer has no labels); '-' is not
    // allowed in a metric name.
    auto name = "imengine_cluster_request_seconds_" + p->name;
    std::replace(name.begin(), name.end(), '-', '_');
    p->request_seconds.render(out, name, "Requests to the peer's actors until their reply.");
  }
  return out;
}

peer_metrics* metrics::peer(const std::string& name) const {
  for (const auto& p : peers)
    if (p->name == name)
      return p.get();
  return nullptr;
}

} // namespace imengine
