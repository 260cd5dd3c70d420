#include "actors/storage_writer.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "engine/ids.hpp"
#include "engine/metrics.hpp"
#include "storage/store.hpp"

namespace imengine {

namespace {

using self_ptr = writer_actor::stateful_pointer<storage_writer_state>;

void commit_batch(self_ptr self, storage::store* store, metrics* stats) {
  auto batch = std::move(self->state.batch);
  self->state.batch.clear();
  self->state.flush_queued = false;
  if (batch.empty())
    return;
  auto start = std::chrono::steady_clock::now();
  std::vector<errc> results(batch.size(), errc::none);
  std::string why;   // the exception's text, for every requester
  try {
    for (;;) {
      try {
        auto t = store->write();
        for (size_t i = 0; i < batch.size(); ++i)
          results[i] = batch[i].first.apply(*store, t);
        t.commit();
        break;
      } catch (const storage::lmdb_error& e) {
        if (e.code() != MDB_MAP_FULL)
          throw;
        // The aborted transaction wrote nothing and jobs are pure, so the
        // batch runs again on the larger map.
        auto size = store->grow_map();
        stats->map_grows++;
        spdlog::info("LMDB map full: grown to {} MiB", size >> 20);
      }
    }
  } catch (const std::exception& e) {
    // A job that throws may have written half its work: nothing of this
    // batch is committed, and every requester hears so.
    spdlog::error("storage commit of {} jobs failed: {}", batch.size(), e.what());
    why = std::string("the store could not commit: ") + e.what();
    std::fill(results.begin(), results.end(), errc::storage);
    stats->commit_errors++;
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  stats->writer_queue -= static_cast<int64_t>(batch.size());
  stats->commits++;
  stats->commit_batch_size.observe(static_cast<double>(batch.size()));
  stats->commit_seconds.observe(took.count());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results[i] == errc::none)
      batch[i].second.deliver(ok_atom::value);
    else
      batch[i].second.deliver(
        make_error(results[i], why.empty() ? "the store refused the write" : why));
  }
}

constexpr auto sweep_interval = std::chrono::seconds(5);
constexpr size_t sweep_slice = 20000;

void sweep(self_ptr self, storage::store* store) {
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

writer_actor::behavior_type storage_writer_fun(self_ptr self, storage::store* store,
                                               metrics* stats) {
  self->delayed_send(self, sweep_interval, sweep_atom::value);
  return {
    [=](write_job& job) -> caf::result<ok_atom> {
      if (self->state.stopping)
        return make_error(errc::unavailable, "node is shutting down");
      auto rp = self->make_response_promise<ok_atom>();
      self->state.batch.emplace_back(std::move(job), rp);
      stats->writer_queue++;
      // The flush lands behind everything already in the mailbox: that is
      // what groups the commits.
      if (!self->state.flush_queued) {
        self->state.flush_queued = true;
        self->send(self, commit_atom::value);
      }
      return rp;
    },
    [=](commit_atom) { commit_batch(self, store, stats); },
    [=](sweep_atom) {
      commit_batch(self, store, stats);
      sweep(self, store);
      self->delayed_send(self, sweep_interval, sweep_atom::value);
    },
    [=](stop_atom) {
      commit_batch(self, store, stats);
      self->state.stopping = true;
      self->quit();
    },
  };
}

} // namespace imengine
