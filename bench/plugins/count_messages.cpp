// count_messages: the cheapest after_persist observer, registered for
// every conversation. docs/BENCHMARKS.md measures dm throughput with it
// against without: the cost of the hook mechanism itself.

#include <imengine/plugin.hpp>

namespace {

using namespace imengine::plugin;

struct count_state {
  uint64_t seen = 0;
};

after_persist_actor::behavior_type count(after_persist_actor::stateful_pointer<count_state> self) {
  return {
    [=](after_persist_atom, const event&) { self->state.seen++; },
  };
}

bool init(registrar& r) {
  r.after_persist(count);
  return true;
}

} // namespace

IMENGINE_PLUGIN("count_messages", init)
