#include "actors/node_actors.hpp"

#include "actors/fanout.hpp"
#include "actors/messages.hpp"
#include "actors/reader.hpp"
#include "actors/storage_writer.hpp"

namespace imengine {

node_actors::node_actors(caf::actor_system_config& caf_cfg, const engine_config& cfg)
  : mids_(node_number(cfg.node)) {
  store_ = std::make_unique<storage::store>(
    storage::store_options{cfg.data, cfg.sync != "none", cfg.map_size_mb});
  add_message_types(caf_cfg);
  sys_ = std::make_unique<caf::actor_system>(caf_cfg);
  ctx_.cfg = cfg;
  ctx_.store = store_.get();
  ctx_.metrics = &stats_;
  ctx_.mids = &mids_;
  ctx_.writer = sys_->spawn<caf::detached>(storage_writer_fun, store_.get(), &stats_);
  ctx_.fanout = sys_->spawn(fanout_fun, &ctx_);
  ctx_.reader = sys_->spawn(reader_fun, &ctx_);
  dir_ = std::make_unique<directory>(*sys_, &ctx_);
  ctx_.dir = dir_.get();
}

node_actors::~node_actors() {
  stop();
  dir_.reset();
  sys_.reset();
  store_.reset();
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
  for (auto& a : dir_->all())
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(ctx_.fanout, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(ctx_.reader, caf::exit_reason::user_shutdown);
  // A normal message: the writer commits every job queued before it.
  caf::anon_send(ctx_.writer, stop_atom::value);
  dir_->close();
  ctx_.writer = nullptr;
  ctx_.fanout = nullptr;
  ctx_.reader = nullptr;
  sys_->await_all_actors_done();
}

} // namespace imengine
