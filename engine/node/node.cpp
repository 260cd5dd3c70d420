#include "engine/node/node.hpp"

#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/api.hpp"
#include "actors/connection.hpp"
#include "actors/messages.hpp"
#include "actors/node_actors.hpp"
#include "actors/shrink.hpp"
#include "engine/api_auth.hpp"
#include "engine/metrics.hpp"
#include "engine/node/cli.hpp"
#include "engine/node/memory.hpp"
#include "engine/node/process_metrics.hpp"
#include "net/server.hpp"

namespace imengine {

namespace {

constexpr auto drain_timeout = std::chrono::seconds(5);

// Bridges one socket to its connection actor: frames in as messages, in
// arrival order (anon_send from one thread keeps order).
class connection_bridge : public net::frame_handler {
public:
  connection_bridge(connection_actor conn, std::function<void(const connection_actor&)> on_gone)
    : conn_(std::move(conn)), on_gone_(std::move(on_gone)) {}

  void on_frame(std::string data, bool binary) override {
    caf::anon_send(conn_, frame_atom::value, std::move(data), binary);
  }

  void on_close() override {
    caf::anon_send(conn_, closed_atom::value);
    on_gone_(conn_);
  }

private:
  connection_actor conn_;
  std::function<void(const connection_actor&)> on_gone_;
};

class ignore_frames : public net::frame_handler {
public:
  void on_frame(std::string, bool) override {}
  void on_close() override {}
};

} // namespace

struct node::impl {
  caf::actor_system_config& caf_cfg;
  engine_config cfg;
  // Declared before the actors so that it is destroyed after them: actors
  // hold frame sinks bound to the server's io_context.
  std::unique_ptr<net::server> server;
  std::unique_ptr<node_actors> actors;
  std::unique_ptr<memory_releaser> releaser;   // stopped before the actors go
  std::mutex conns_mtx;
  std::condition_variable conns_gone;   // notified as conns shrinks
  std::unordered_map<caf::actor_addr, connection_actor> conns;
  bool started = false;
  bool stopped = false;

  impl(caf::actor_system_config& c, engine_config e) : caf_cfg(c), cfg(std::move(e)) {}

  std::shared_ptr<net::frame_handler> open(std::shared_ptr<frame_sink> sink) {
    std::lock_guard<std::mutex> guard(conns_mtx);
    if (stopped) {   // accepted while shutting down: no actor for it
      sink->close(1001, "going away");
      return std::make_shared<ignore_frames>();
    }
    auto conn = actors->system().spawn(connection_fun, &actors->context(), sink);
    // A connection actor that dies of anything but a normal stop (a crash)
    // must not leave its socket open and answering pings. A close after
    // the socket is gone, or after one the actor started, does nothing.
    conn->attach_functor([sink](const caf::error& reason) {
      if (reason && reason != caf::exit_reason::normal
          && reason != caf::exit_reason::user_shutdown)
        sink->close(1011, "internal error");
    });
    conns.emplace(conn.address(), conn);
    return std::make_shared<connection_bridge>(conn, [this](const connection_actor& c) {
      std::lock_guard<std::mutex> guard(conns_mtx);
      conns.erase(c.address());
      shrink_if_sparse(conns);
      conns_gone.notify_all();
    });
  }

  // A server API request, from an io thread; nothing is spawned once
  // stopping began.
  void call_api(api_request r, std::function<void(api_response)> done) {
    std::lock_guard<std::mutex> guard(conns_mtx);
    if (stopped) {
      done({503, R"({"error":"unavailable","msg":"node is shutting down"})"});
      return;
    }
    imengine::call_api(actors->system(), actors->context().api, std::move(r), std::move(done));
  }
};

node::node(caf::actor_system_config& caf_cfg, engine_config cfg)
  : impl_(std::make_unique<impl>(caf_cfg, std::move(cfg))) {
}

node::~node() {
  stop();
}

uint16_t node::start() {
  auto& d = *impl_;
  d.actors = std::make_unique<node_actors>(d.caf_cfg, d.cfg);
  d.started = true;
  d.actors->resume_fanouts();
  net::server_options opts;
  opts.host = d.cfg.host;
  opts.port = d.cfg.port;
  opts.heartbeat = std::chrono::milliseconds(d.cfg.heartbeat_ms);
  // Frames over max-frame get `too_large` and the session lives on; only
  // absurd ones are cut off by the transport (close 1009).
  opts.read_limit = std::max<size_t>(size_t{1} << 20, size_t{d.cfg.max_frame} * 4);
  opts.threads = d.cfg.io_threads;
  opts.max_body = d.cfg.max_frame;   // API bodies over max-frame get 413
  opts.max_conns = d.cfg.max_conns;
  opts.handshake_timeout = std::chrono::milliseconds(d.cfg.handshake_timeout_ms);
  opts.allowed_origins = d.cfg.allowed_origins;
  opts.metrics_loopback = !d.cfg.metrics_require_token;
  opts.tls_cert = d.cfg.tls_cert;
  opts.tls_key = d.cfg.tls_key;
  net::http_handlers http;
  auto* stats = d.actors->context().metrics;
  http.refused = [stats](refusal r) { stats->count_refused(r); };
  if (!d.cfg.metrics_token.empty())
    http.metrics_authorized = [token = std::make_shared<api_key>(d.cfg.metrics_token)](
                                std::string_view authorization) {
      return token->matches(authorization);
    };
  http.metrics = [&d] {
    auto out = d.actors->render_metrics();
    auto queues = d.server->queued_frames();   // the server answers: it exists
    render_gauge(out, "imengine_ws_queued_frames",
                 "frames accepted for open WebSockets and not yet written",
                 static_cast<double>(queues.frames));
    render_gauge(out, "imengine_ws_queue_longest",
                 "the most frames queued on one WebSocket",
                 static_cast<double>(queues.longest));
    render_process_metrics(out, engine_version());
    render_heap_metrics(out);
    return out;
  };
  http.cluster = [&d] {
    auto peers = nlohmann::json::array();
    for (const auto& [name, up] : d.actors->dir().peer_states())
      peers.push_back({{"node", name}, {"up", up}});
    return nlohmann::json{{"node", d.cfg.node}, {"peers", peers}}.dump() + "\n";
  };
  if (!d.cfg.api_key.empty()) {
    http.api_authorized = [key = std::make_shared<api_key>(d.cfg.api_key)](
                            std::string_view authorization) { return key->matches(authorization); };
    http.api = [&d](api_request r, std::function<void(api_response)> done) {
      d.call_api(std::move(r), std::move(done));
    };
  }
  d.server = std::make_unique<net::server>(
    opts, [&d](std::shared_ptr<frame_sink> sink) { return d.open(std::move(sink)); }, http);
  auto port = d.server->start();
  // The node's size: open connections and live user actors.
  d.releaser = std::make_unique<memory_releaser>(
    std::chrono::seconds(5), [stats, last = int64_t{0}]() mutable {
      auto now = stats->connections.load() + stats->user_actors.load();
      auto shrank = now < last;
      last = now;
      return shrank;
    });
  return port;
}

void node::stop() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard(d.conns_mtx);
    if (!d.started || d.stopped)
      return;
    d.stopped = true;
  }
  if (d.server)
    d.server->stop_accepting();
  // Drain first: each connection takes no new frame, waits for the
  // answers of the sends it has in flight (acks of committed messages
  // reach their senders), then closes with 1001. Bounded; whatever is
  // left after that is closed as it is.
  std::vector<connection_actor> conns;
  {
    std::unique_lock<std::mutex> lock(d.conns_mtx);
    for (auto& kv : d.conns)
      caf::anon_send(kv.second, drain_atom::value);
    d.conns_gone.wait_for(lock, drain_timeout, [&d] { return d.conns.empty(); });
  }
  if (d.server)
    d.server->close_all(1001);
  {
    std::lock_guard<std::mutex> guard(d.conns_mtx);
    for (auto& kv : d.conns)
      conns.push_back(kv.second);
    d.conns.clear();
  }
  for (auto& c : conns)
    caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  d.releaser.reset();
  d.actors->stop();
  if (d.server)
    d.server->stop();
  d.actors.reset();
  spdlog::info("node {} stopped", d.cfg.node);
}

} // namespace imengine
