#include "actors/plugin_host.hpp"

#include <dlfcn.h>

#include <fstream>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/node_context.hpp"
#include "engine/rules.hpp"

namespace imengine {

namespace {

using json = nlohmann::json;
using entry_fn = int (*)(uint32_t, uint32_t*, plugin::registrar*);

constexpr auto restart_pause = std::chrono::seconds(1);

// One hook actor under supervision: how to spawn it (which also puts the
// new handle into its slot), and the one running now.
struct supervised {
  std::string what;   // "plugin/hook", for the log
  std::function<caf::actor(caf::actor_system&)> spawn;
  hook_counters* counters = nullptr;
  caf::actor_addr current;
  std::chrono::steady_clock::time_point started;
};

struct supervisor_state {
  std::vector<supervised> hooks;
  static inline const char* name = "plugin_supervisor";
};

using supervisor_ptr = plugin_supervisor_actor::stateful_pointer<supervisor_state>;

void start_hook(supervisor_ptr self, uint32_t i) {
  auto& h = self->state.hooks[i];
  auto a = h.spawn(self->system());
  h.current = a.address();
  h.started = std::chrono::steady_clock::now();
  self->monitor(a);
}

plugin_supervisor_actor::behavior_type supervisor_fun(supervisor_ptr self,
                                                      std::vector<supervised> hooks) {
  self->state.hooks = std::move(hooks);
  for (uint32_t i = 0; i < self->state.hooks.size(); ++i)
    start_hook(self, i);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& hooks = self->state.hooks;
    for (uint32_t i = 0; i < hooks.size(); ++i) {
      auto& h = hooks[i];
      if (h.current != dm.source)
        continue;
      h.current = nullptr;
      if (!dm.reason || dm.reason == caf::exit_reason::normal
          || dm.reason == caf::exit_reason::user_shutdown)
        return;   // it chose to stop, or the node is stopping
      h.counters->restarts.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("plugin {} died ({}): restarting", h.what, self->system().render(dm.reason));
      // A plugin that dies as it starts is not spun on: once a second.
      if (std::chrono::steady_clock::now() - h.started < restart_pause)
        self->delayed_send(self, restart_pause, restart_atom::value, i);
      else
        start_hook(self, i);
      return;
    }
  });
  return {
    [=](restart_atom, uint32_t i) {
      if (i < self->state.hooks.size() && !self->state.hooks[i].current)
        start_hook(self, i);
    },
  };
}

json read_config(const std::string& path) {
  if (path.empty())
    return json::object();
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("--plugin-config " + path + ": cannot be read");
  auto cfg = json::parse(in, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object())
    throw std::runtime_error("--plugin-config " + path + ": not a JSON object");
  return cfg;
}

// The registrar one plugin's init sees. Collects its registrations; the
// plugin's `deadline_ms` and `policy` settings override the options it
// registers with.
class host_registrar : public plugin::registrar {
public:
  host_registrar(caf::actor_system& sys, plugin::engine_actor engine, const json& all_config,
                 std::string path, plugin_registry& reg, std::vector<supervised>& hooks)
    : sys_(sys), engine_(std::move(engine)), all_(all_config), path_(std::move(path)),
      reg_(reg), hooks_(hooks) {}

  const std::string& name() const { return name_; }

  void begin(const char* plugin_name) override {
    name_ = plugin_name ? plugin_name : "";
    if (name_.empty())
      throw std::runtime_error("plugin " + path_ + " has no name");
    auto i = all_.find(name_);
    if (i != all_.end() && !i->is_object())
      throw std::runtime_error("plugin " + name_ + ": its --plugin-config entry is not an object");
    own_ = i != all_.end() ? *i : json::object();
    config_ = own_.dump();
  }

  const std::string& config() const override { return config_; }
  caf::actor_system& system() override { return sys_; }
  plugin::engine_actor engine() override { return engine_; }
  void log(const std::string& line) override { spdlog::info("plugin {}: {}", name_, line); }

  void add_before_persist(plugin::factory<plugin::before_persist_actor> make,
                          plugin::hook_options o) override {
    add(reg_.before, std::move(make), std::move(o), hook::before_persist);
  }
  void add_after_persist(plugin::factory<plugin::after_persist_actor> make,
                         plugin::hook_options o) override {
    add(reg_.after, std::move(make), std::move(o), hook::after_persist);
  }
  void add_offline(plugin::factory<plugin::offline_actor> make,
                   plugin::hook_options o) override {
    add(reg_.offline, std::move(make), std::move(o), hook::offline);
  }
  void add_session(plugin::factory<plugin::session_actor> make,
                   plugin::hook_options o) override {
    add(reg_.session, std::move(make), std::move(o), hook::session);
  }

private:
  void apply_settings(plugin::hook_options& o) const {
    if (auto d = own_.find("deadline_ms"); d != own_.end()) {
      if (!d->is_number_unsigned() || d->get<uint64_t>() == 0 || d->get<uint64_t>() > 600000)
        throw std::runtime_error("plugin " + name_ + ": deadline_ms must be 1..600000");
      o.deadline = std::chrono::milliseconds(d->get<uint64_t>());
    }
    if (auto p = own_.find("policy"); p != own_.end()) {
      if (*p == "fail_open")
        o.on_failure = plugin::policy::fail_open;
      else if (*p == "fail_closed")
        o.on_failure = plugin::policy::fail_closed;
      else
        throw std::runtime_error("plugin " + name_ + ": policy must be fail_open or fail_closed");
    }
  }

  template <class Handle>
  void add(hook_slots<Handle>& slots, plugin::factory<Handle> make, plugin::hook_options o,
           hook h) {
    if (!make)
      throw std::runtime_error("plugin " + name_ + ": empty factory for " + to_string(h));
    apply_settings(o);
    auto slot = std::make_shared<hook_slot<Handle>>(name_, std::move(o));
    slots.push_back(slot);
    supervised s;
    s.what = name_ + "/" + to_string(h);
    s.counters = &slot->counters;
    s.spawn = [slot, make](caf::actor_system& sys) {
      auto a = make(sys);
      slot->set_actor(a);
      return caf::actor_cast<caf::actor>(a);
    };
    hooks_.push_back(std::move(s));
  }

  caf::actor_system& sys_;
  plugin::engine_actor engine_;
  const json& all_;
  std::string path_;
  plugin_registry& reg_;
  std::vector<supervised>& hooks_;
  std::string name_;
  json own_;
  std::string config_;
};

} // namespace

struct plugin_host::loaded {
  void* handle = nullptr;
  std::string name;
};

plugin_host::plugin_host(caf::actor_system& sys, const node_context* ctx,
                         const std::vector<std::string>& paths, const std::string& config_path)
  : sys_(sys) {
  auto config = read_config(config_path);
  engine_ = sys.spawn(bot_engine_fun, ctx);
  std::vector<supervised> hooks;
  try {
    for (const auto& path : paths) {
      auto lib = std::make_unique<loaded>();
      // RTLD_NOW: a plugin with an unresolved symbol fails here, not at
      // its first call in the middle of a message.
      lib->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib->handle)
        throw std::runtime_error("plugin " + path + ": " + dlerror());
      auto entry = reinterpret_cast<entry_fn>(dlsym(lib->handle, "imengine_plugin_entry"));
      if (!entry)
        throw std::runtime_error("plugin " + path
                                 + ": no imengine_plugin_entry (define it with IMENGINE_PLUGIN)");
      host_registrar reg(sys, engine_, config, path, registry_, hooks);
      uint32_t their_api = 0;
      int rc = 0;
      try {
        rc = entry(plugin::api_version, &their_api, &reg);
      } catch (const std::exception& e) {
        throw std::runtime_error("plugin " + path + ": its init threw: " + e.what());
      }
      if (rc == 1 || their_api != plugin::api_version)
        throw std::runtime_error("plugin " + path + " was built against plugin API version "
                                 + std::to_string(their_api) + "; this engine has version "
                                 + std::to_string(plugin::api_version) + ": rebuild it");
      if (rc != 0)
        throw std::runtime_error("plugin " + reg.name() + " (" + path + "): its init refused to start");
      for (const auto& l : libs_)
        if (l->name == reg.name())
          throw std::runtime_error("plugin " + reg.name() + " is loaded twice");
      lib->name = reg.name();
      spdlog::info("plugin {} loaded from {}", lib->name, path);
      libs_.push_back(std::move(lib));
    }
  } catch (...) {
    caf::anon_send_exit(engine_, caf::exit_reason::user_shutdown);
    throw;
  }
  if (!hooks.empty())
    supervisor_ = sys.spawn(supervisor_fun, std::move(hooks));
}

plugin_host::~plugin_host() {
  stop();
}

void plugin_host::stop() {
  auto stop_all = [](const auto& slots) {
    for (const auto& s : slots)
      if (auto a = s->actor())
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  };
  if (supervisor_) {
    // The supervisor first, so that it does not respawn what stops next.
    caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
    supervisor_ = nullptr;
    stop_all(registry_.before);
    stop_all(registry_.after);
    stop_all(registry_.offline);
    stop_all(registry_.session);
  }
  if (engine_) {
    caf::anon_send_exit(engine_, caf::exit_reason::user_shutdown);
    engine_ = nullptr;
  }
}

plugin::engine_actor::behavior_type
bot_engine_fun(plugin::engine_actor::stateful_pointer<bot_engine_state> self,
               const node_context* ctx) {
  return {
    // The server API's gateway does the checks and the send: a bot's
    // message takes the path of an API send, which is a client's.
    [=](plugin::bot_send_atom, plugin::bot_message& m) -> caf::result<plugin::bot_ack> {
      if (reserved_user(m.as_user))
        return make_error(errc::forbidden, m.as_user + " is reserved for the server");
      send_item item{std::move(m.cmid), std::move(m.type), std::move(m.body),
                     m.ex == "{}" ? std::string{} : std::move(m.ex), 0, {}};   // bot_message has no mentions
      auto rp = self->make_response_promise<plugin::bot_ack>();
      self->request(ctx->api, std::chrono::seconds(30), send_atom::value, m.as_user, m.conv,
                    std::move(item))
        .then(
          [=](send_ack& a) mutable {
            rp.deliver(plugin::bot_ack{a.first_seq, a.mids.front(), a.ts, a.dup});
          },
          [=](caf::error& e) mutable { rp.deliver(e); });
      return rp;
    },
  };
}

} // namespace imengine
