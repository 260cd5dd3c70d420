#pragma once

#include "bench/driver.hpp"

// One function per scenario; each returns its JSON summary.
namespace imbench {

json run_dm(run_context& ctx);
json run_offline(run_context& ctx);
json run_idle(run_context& ctx);
json run_group(run_context& ctx);
json run_room(run_context& ctx);

} // namespace imbench
