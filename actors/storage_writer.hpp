#pragma once

#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace imengine {

namespace storage {
class store;
}
struct metrics;

struct storage_writer_state {
  std::vector<std::pair<write_job, caf::typed_response_promise<ok_atom>>> batch;
  bool flush_queued = false;
  bool stopping = false;
  std::string sweep_cursor;   // where the next dedupe sweep continues
  static inline const char* name = "storage_writer";
};

// The node's only LMDB writer (LMDB allows one write transaction at a
// time). Group commit: jobs that arrive while a commit is running wait in
// the mailbox, and the next flush commits all of them in one transaction
// with one fsync. Each job's requester gets ok_atom or the job's error only
// after the commit. Between batches it sweeps expired dedupe entries, a
// bounded slice at a time. Spawn it `detached`: the fsync blocks its thread.
writer_actor::behavior_type
storage_writer_fun(writer_actor::stateful_pointer<storage_writer_state> self,
                   storage::store* store, metrics* stats);

} // namespace imengine
