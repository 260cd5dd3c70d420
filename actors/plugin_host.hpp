#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/plugins.hpp"

namespace imengine {

struct node_context;

// The plugins of one node (docs/PLUGINS.md): loads each shared library of
// `paths` in order, checks its API version, runs its init with a registrar
// (its settings from the JSON file `config_path`), then spawns the hook
// actors it registered under a supervisor that spawns again any that dies
// of anything but a normal exit (at once; after 1 s when it died within a
// second of its start). Libraries stay loaded until the process ends: the
// actors' code lives in them.
class plugin_host {
public:
  // Throws std::runtime_error naming the plugin and the reason: a missing
  // file, no entry point, another API version, init refused, bad config.
  plugin_host(caf::actor_system& sys, const node_context* ctx,
              const std::vector<std::string>& paths, const std::string& config_path);
  ~plugin_host();   // stop()
  plugin_host(const plugin_host&) = delete;
  plugin_host& operator=(const plugin_host&) = delete;

  const plugin_registry& registry() const { return registry_; }

  // Stops the supervisor, every hook actor and the bots' engine handle.
  void stop();

private:
  struct loaded;   // one library: handle and name
  caf::actor_system& sys_;
  plugin_registry registry_;
  std::vector<std::unique_ptr<loaded>> libs_;
  plugin::engine_actor engine_;
  plugin_supervisor_actor supervisor_;
};

struct bot_engine_state {
  static inline const char* name = "bot_engine";
};

// The engine as bots see it: a send as a user, through the server API's
// gateway (actors/api.hpp), so validated and routed like a client's.
plugin::engine_actor::behavior_type
bot_engine_fun(plugin::engine_actor::stateful_pointer<bot_engine_state> self,
               const node_context* ctx);

} // namespace imengine
