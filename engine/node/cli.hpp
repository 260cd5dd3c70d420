#pragma once

#include <string>

#include <caf/actor_system_config.hpp>

#include "engine/config.hpp"

namespace imengine {

// The engine's command line: its own flags (engine_config) next to CAF's
// (scheduler, logging, ...), in CAF's --name=value form or the same names
// in caf-application.ini.
struct cli_config : caf::actor_system_config {
  engine_config engine;
  cli_config();
  const caf::config_option_set& options() const { return custom_options_; }
};

// The version `imengine --version` prints (CMake's project version).
std::string engine_version();

// The first argument that is not a flag (CAF stops reading flags at it,
// silently dropping every flag that follows), or empty.
std::string stray_argument(int argc, char** argv);

// The first --flag that neither the engine nor CAF knows, or empty.
std::string unknown_flag(const cli_config& cfg, int argc, char** argv);

// Whether argv asks for --help / -h (printed by us: the engine's flags
// first) or --version.
bool wants_help(int argc, char** argv);
bool wants_version(int argc, char** argv);

// The help text: usage, the engine's flags, then where CAF's are.
std::string help_text(const cli_config& cfg);

// Checks the flags and completes them (secrets read from their files, the
// cluster port from --peers). Empty when they are fine, else the problem,
// which main prints before exiting with 2.
std::string check_flags(engine_config& e);

// Unless the flags or the config file set scheduler.max-threads: one CAF
// worker per core the io threads leave, at least one. CAF's default (one
// per core) put a second worker on a 2-core box that the io thread, the
// writer and CAF's clock also need, and the hand-offs between them cost
// more than the parallelism gave (docs/BENCHMARKS.md, "CAF workers").
void default_worker_count(cli_config& cfg, unsigned cores);

// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

} // namespace imengine
