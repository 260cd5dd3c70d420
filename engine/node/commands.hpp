#pragma once

#include <optional>

namespace imengine {

// The subcommands beside running a node: `imengine backup ...` and
// `imengine token ...` (argv[1] names them). nullopt when argv names
// none, else the process's exit code (2 for bad flags, as the node's).
std::optional<int> run_command(int argc, char** argv);

} // namespace imengine
