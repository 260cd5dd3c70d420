#pragma once

#include <string>

namespace imengine {

// Appends the standard `process_*` figures of this process (CPU seconds,
// resident and virtual memory, open and maximum descriptors, start time,
// from /proc) and `imengine_build_info{version=...} 1`, as Prometheus
// client libraries name them, so dashboards built for those work here.
void render_process_metrics(std::string& out, const std::string& version);

} // namespace imengine
