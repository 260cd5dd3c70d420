#include "actors/storage_writer.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "engine/ids.hpp"
#include "engine/metrics.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

void commit_batch(caf::stateful_actor<storage_writer_state>* self,
                  storage::store* store, metrics* stats) {
  auto batch = std::move(self->state.batch);
  self->state.batch.clear();
  self->state.flush_queued = false;
  if (batch.empty())
    return;
  auto start = std::chrono::steady_clock::now();
  std::vector<errc> results(batch.size(), errc::none);
  try {
    auto t = store->write();
    for (size_t i = 0; i < batch.size(); ++i)
      results[i] = batch[i].first.apply(*store, t);
    t.commit();
  } catch (const std::exception& e) {
    // A job that throws may have written half its work: nothing of this
    // batch is committed, and every requester hears so.
    spdlog::error("storage commit of {} jobs failed: {}", batch.size(), e.what());
    std::fill(results.begin(), results.end(), errc::storage);
    stats->commit_errors++;
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  stats->commits++;
  stats->commit_batch_size.observe(static_cast<double>(batch.size()));
  stats->commit_seconds.observe(took.count());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results[i] == errc::none)
      batch[i].second.deliver(ok_atom::value);
    else
      batch[i].second.deliver(make_error(results[i]));
  }
}

constexpr auto sweep_interval = std::chrono::seconds(5);
constexpr size_t sweep_slice = 20000;

void sweep(caf::stateful_actor<storage_writer_state>* self, storage::store* store) {
  try {
    auto t = store->write();
    auto n = store->sweep_dedupe(t, now_ms() / 1000, self->state.sweep_cursor, sweep_slice);
    t.commit();
    if (n > 0)
      spdlog::debug("swept {} expired dedupe entries", n);
  } catch (const std::exception& e) {
    spdlog::warn("dedupe sweep failed: {}", e.what());
  }
}

} // namespace

caf::behavior storage_writer(caf::stateful_actor<storage_writer_state>* self,
                             storage::store* store, metrics* stats) {
  self->delayed_send(self, sweep_interval, tick_atom::value);
  return {
    [=](write_job& job) {
      auto rp = self->make_response_promise();
      if (self->state.stopping) {
        rp.deliver(make_error(errc::unavailable, "node is shutting down"));
        return;
      }
      self->state.batch.emplace_back(std::move(job), std::move(rp));
      // The flush lands behind everything already in the mailbox: that is
      // what groups the commits.
      if (!self->state.flush_queued) {
        self->state.flush_queued = true;
        self->send(self, flush_atom::value);
      }
    },
    [=](flush_atom) { commit_batch(self, store, stats); },
    [=](tick_atom) {
      commit_batch(self, store, stats);
      sweep(self, store);
      self->delayed_send(self, sweep_interval, tick_atom::value);
    },
    [=](stop_atom) {
      commit_batch(self, store, stats);
      self->state.stopping = true;
      self->quit();
    },
  };
}

} // namespace imengine
