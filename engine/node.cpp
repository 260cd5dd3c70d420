#include "engine/node.hpp"

#include <mutex>
#include <unordered_map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/connection.hpp"
#include "actors/directory.hpp"
#include "actors/fanout.hpp"
#include "actors/messages.hpp"
#include "actors/node_context.hpp"
#include "actors/storage_writer.hpp"
#include "engine/metrics.hpp"
#include "net/server.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

// Bridges one socket to its connection actor: frames in as messages, in
// arrival order (anon_send from one thread keeps order).
class connection_bridge : public net::frame_handler {
public:
  connection_bridge(caf::actor conn, std::function<void(const caf::actor&)> on_gone)
    : conn_(std::move(conn)), on_gone_(std::move(on_gone)) {}

  void on_frame(std::string data, bool binary) override {
    caf::anon_send(conn_, frame_atom::value, std::move(data), binary);
  }

  void on_close() override {
    caf::anon_send(conn_, closed_atom::value);
    on_gone_(conn_);
  }

private:
  caf::actor conn_;
  std::function<void(const caf::actor&)> on_gone_;
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
  metrics stats;
  mid_generator mids;
  std::unique_ptr<storage::store> store;
  // Declared before the actor system so that it is destroyed after it:
  // actors hold frame sinks bound to the server's io_context.
  std::unique_ptr<net::server> server;
  std::unique_ptr<caf::actor_system> sys;
  node_context ctx;
  std::unique_ptr<directory> dir;
  std::mutex conns_mtx;
  std::unordered_map<caf::actor_addr, caf::actor> conns;
  bool started = false;
  bool stopped = false;

  impl(caf::actor_system_config& c, engine_config e)
    : caf_cfg(c), cfg(std::move(e)), mids(node_number(cfg.node)) {
  }

  std::shared_ptr<net::frame_handler> open(std::shared_ptr<frame_sink> sink) {
    std::lock_guard<std::mutex> guard(conns_mtx);
    if (stopped) {   // accepted while shutting down: no actor for it
      sink->close(1001, "going away");
      return std::make_shared<ignore_frames>();
    }
    auto conn = sys->spawn(connection_actor, &ctx, sink);
    // A connection actor that dies abnormally (a crash, an uncaught
    // exception) leaves nobody to close its socket. A normal exit follows
    // the socket's own close, user_shutdown stop()'s 1001; a second close
    // of a session already closing is a no-op.
    conn->attach_functor([sink = std::move(sink)](const caf::error& reason) {
      if (reason && reason != caf::exit_reason::user_shutdown)
        sink->close(1011, "internal error");
    });
    conns.emplace(conn.address(), conn);
    return std::make_shared<connection_bridge>(conn, [this](const caf::actor& c) {
      std::lock_guard<std::mutex> guard(conns_mtx);
      conns.erase(c.address());
    });
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
  d.store = std::make_unique<storage::store>(
    storage::store_options{d.cfg.data, d.cfg.sync != "none", d.cfg.map_size_mb});
  add_message_types(d.caf_cfg);
  d.sys = std::make_unique<caf::actor_system>(d.caf_cfg);
  d.ctx.cfg = d.cfg;
  d.ctx.store = d.store.get();
  d.ctx.metrics = &d.stats;
  d.ctx.mids = &d.mids;
  d.ctx.writer = d.sys->spawn<caf::detached>(storage_writer, d.store.get(), &d.stats);
  d.ctx.fanout = d.sys->spawn(fanout_actor, &d.ctx);
  d.dir = std::make_unique<directory>(*d.sys, &d.ctx);
  d.ctx.dir = d.dir.get();
  d.started = true;
  // Conversations whose fan-out a crash cut short finish it on spawn.
  {
    auto t = d.store->read();
    for (const auto& name : d.store->pending_fanouts(t))
      if (auto c = parse_conv(name))
        d.dir->conversation(*c);
  }
  net::server_options opts;
  opts.host = d.cfg.host;
  opts.port = d.cfg.port;
  opts.heartbeat = std::chrono::milliseconds(d.cfg.heartbeat_ms);
  // Frames over max-frame get `too_large` and the session lives on; only
  // absurd ones are cut off by the transport (close 1009).
  opts.read_limit = std::max<size_t>(size_t{1} << 20, size_t{d.cfg.max_frame} * 4);
  opts.threads = d.cfg.io_threads;
  net::http_handlers http;
  http.metrics = [&d] { return d.stats.render(); };
  d.server = std::make_unique<net::server>(
    opts, [&d](std::shared_ptr<frame_sink> sink) { return d.open(std::move(sink)); }, http);
  return d.server->start();
}

void node::stop() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard(d.conns_mtx);
    if (!d.started || d.stopped)
      return;
    d.stopped = true;
  }
  d.server->stop_accepting();
  d.server->close_all(1001);
  std::vector<caf::actor> conns;
  {
    std::lock_guard<std::mutex> guard(d.conns_mtx);
    for (auto& kv : d.conns)
      conns.push_back(kv.second);
    d.conns.clear();
  }
  for (auto& c : conns)
    caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  for (auto& a : d.dir->all())
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  // A normal message: the writer commits every job queued before it.
  caf::anon_send_exit(d.ctx.fanout, caf::exit_reason::user_shutdown);
  caf::anon_send(d.ctx.writer, stop_atom::value);
  d.dir->close();
  d.ctx.writer = nullptr;
  d.ctx.fanout = nullptr;
  d.sys->await_all_actors_done();
  d.server->stop();
  d.sys.reset();
  d.store.reset();
  spdlog::info("node {} stopped", d.cfg.node);
}

} // namespace imengine
