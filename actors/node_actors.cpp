#include "actors/node_actors.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <caf/io/all.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>

#include "actors/api.hpp"
#include "actors/fanout.hpp"
#include "actors/messages.hpp"
#include "actors/reader.hpp"
#include "actors/storage_writer.hpp"

namespace imengine {

namespace {

std::vector<peer> peers_of(const engine_config& cfg) {
  auto peers = parse_peers(cfg.peers);
  if (!peers)
    throw std::runtime_error(peers.error().msg);
  return *peers;
}

// Heartbeats on every node (a node that expects them drops a peer that
// sends none): a frozen peer is seen down within the protocol's 5 s.
// With the cluster TLS flags, caf-openssl's manager (loaded after the
// middleman it builds on) carries the links: a configured CA makes it
// require and verify the peer's certificate on both ends.
void configure_middleman(caf::actor_system_config& cfg, const engine_config& e) {
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(500)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(3)});
  if (!e.cluster_tls())
    return;
  cfg.openssl_certificate = e.cluster_cert;
  cfg.openssl_key = e.cluster_key;
  cfg.openssl_cafile = e.cluster_ca;
  cfg.load<caf::openssl::manager>();
}

// The node number in message ids: alone, a hash of the name (as ever); in
// a cluster, the node's place in the sorted configured list, so that no
// two nodes share one (a hash into 10 bits could).
uint16_t mid_node_number(const engine_config& cfg) {
  cluster_map map(cfg.node, peers_of(cfg));
  if (map.alone())
    return node_number(cfg.node);
  auto& nodes = map.nodes();
  return static_cast<uint16_t>(std::find(nodes.begin(), nodes.end(), cfg.node) - nodes.begin());
}

} // namespace

node_actors::node_actors(caf::actor_system_config& caf_cfg, const engine_config& cfg)
  : mids_(mid_node_number(cfg)) {
  auto peers = peers_of(cfg);
  cluster_ = std::make_unique<cluster_map>(cfg.node, peers);
  for (const auto& name : cluster_->nodes())
    if (name != cfg.node)
      stats_.peers.push_back(std::make_unique<peer_metrics>(name));
  store_ = std::make_unique<storage::store>(
    storage::store_options{cfg.data, cfg.sync != "none", cfg.map_size_mb});
  add_message_types(caf_cfg);
  if (!cluster_->alone())
    configure_middleman(caf_cfg, cfg);
  sys_ = std::make_unique<caf::actor_system>(caf_cfg);
  ctx_.cfg = cfg;
  ctx_.cluster = cluster_.get();
  ctx_.store = store_.get();
  ctx_.metrics = &stats_;
  ctx_.mids = &mids_;
  ctx_.writer = sys_->spawn<caf::detached>(storage_writer_fun, store_.get(), &stats_);
  ctx_.fanout = sys_->spawn(fanout_fun, &ctx_);
  ctx_.reader = sys_->spawn(reader_fun, &ctx_);
  dir_ = std::make_unique<directory>(*sys_, &ctx_);
  ctx_.dir = dir_.get();
  ctx_.api = sys_->spawn(api_fun, &ctx_);
  if (!cfg.plugins.empty()) {
    try {
      plugins_ = std::make_unique<plugin_host>(*sys_, &ctx_, cfg.plugins, cfg.plugin_config);
    } catch (...) {
      stop();
      throw;
    }
    ctx_.plugins = &plugins_->registry();
  }
  if (cluster_->alone())
    return;
  node_ = sys_->spawn(directory_fun, &ctx_);
  auto port = cfg.cluster_tls()
                ? caf::openssl::publish(node_, cfg.cluster_port, cfg.cluster_host.c_str(), true)
                : sys_->middleman().publish(node_, cfg.cluster_port, cfg.cluster_host.c_str(),
                                            true);
  if (!port) {
    auto why = sys_->render(port.error());
    stop();
    throw std::runtime_error("cluster port " + cfg.cluster_host + ":"
                             + std::to_string(cfg.cluster_port) + ": " + why);
  }
  peers_ = sys_->spawn(peers_fun, &ctx_, peers, node_);
  sys_->registry().put(peers_registry_name, caf::actor_cast<caf::strong_actor_ptr>(peers_));
}

node_actors::~node_actors() {
  stop();
  dir_.reset();
  sys_.reset();
  store_.reset();
}

std::string node_actors::render_metrics() const {
  auto out = stats_.render();
  auto lmdb = store_->map_usage();
  render_gauge(out, "imengine_lmdb_map_bytes", "LMDB map size (grows when full).",
               static_cast<double>(lmdb.map_bytes));
  render_gauge(out, "imengine_lmdb_used_bytes", "LMDB pages in use, in bytes.",
               static_cast<double>(lmdb.used_bytes));
  auto tables = dir_->sizes();
  out += "# HELP imengine_directory_entries Entries in the directory's tables, by table.\n"
         "# TYPE imengine_directory_entries gauge\n";
  for (auto [table, n] : {std::pair{"users", tables.users},
                          std::pair{"conversations", tables.conversations},
                          std::pair{"remote_users", tables.remote_users},
                          std::pair{"remote_conversations", tables.remote_conversations},
                          std::pair{"restart_histories", tables.restart_histories}})
    out += std::string("imengine_directory_entries{table=\"") + table + "\"} "
           + std::to_string(n) + "\n";
  if (plugins_)
    plugins_->registry().render(out);
  return out;
}

void node_actors::resume_fanouts() {
  auto t = store_->read();
  for (const auto& name : store_->pending_fanouts(t))
    if (auto c = parse_conv(name))
      dir_->conversation(*c);
}

void node_actors::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  if (plugins_)   // first: bots send no more
    plugins_->stop();
  if (peers_) {
    sys_->registry().erase(peers_registry_name);
    caf::anon_send_exit(peers_, caf::exit_reason::user_shutdown);
  }
  if (node_)
    caf::anon_send_exit(node_, caf::exit_reason::user_shutdown);
  for (auto& a : dir_->close())
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(ctx_.fanout, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(ctx_.reader, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(ctx_.api, caf::exit_reason::user_shutdown);
  // A normal message: the writer commits every job queued before it.
  caf::anon_send(ctx_.writer, stop_atom::value);
  ctx_.writer = nullptr;
  ctx_.fanout = nullptr;
  ctx_.reader = nullptr;
  ctx_.api = nullptr;
  sys_->await_all_actors_done();
}

} // namespace imengine
