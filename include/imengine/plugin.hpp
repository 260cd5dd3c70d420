#pragma once

// The imengine plugin API (docs/PLUGINS.md). A plugin is a shared library
// built against this header and CAF 0.17. It defines its entry point with
// IMENGINE_PLUGIN(name, init); at start the engine calls `init` with a
// registrar, through which the plugin registers its actors for hooks. The
// engine spawns those actors (again after a crash), sends them one typed
// request per hook call with a deadline, and applies the hook's failure
// policy when the deadline passes or the actor dies.
//
// Only this header and CAF's cross the boundary: a plugin links CAF, never
// the engine's own libraries.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/all.hpp>

// Bumped whenever anything in this header changes shape. The engine
// refuses a plugin built against another version.
#define IMENGINE_PLUGIN_API_VERSION 1

namespace imengine::plugin {

constexpr uint32_t api_version = IMENGINE_PLUGIN_API_VERSION;

// ---- atoms: one per hook, and the bot's send

using before_persist_atom = caf::atom_constant<caf::atom("p_before")>;
using after_persist_atom = caf::atom_constant<caf::atom("p_after")>;
using offline_atom = caf::atom_constant<caf::atom("p_offline")>;
using connect_atom = caf::atom_constant<caf::atom("p_connect")>;
using disconnect_atom = caf::atom_constant<caf::atom("p_discon")>;
using bot_send_atom = caf::atom_constant<caf::atom("p_send")>;

// ---- payloads

// A message about to be committed: no seq yet. `ex` is a JSON object as
// text ("{}" when the sender gave none).
struct draft {
  std::string conv;
  std::string from;
  std::string device;
  std::string type;
  std::string body;
  std::string ex;
};

enum class decision : uint8_t { accept, rewrite, reject };

// A before_persist answer: accept as is, rewrite body and ex, or reject
// with a reason the sender sees in its `error rejected`.
struct verdict {
  decision what = decision::accept;
  std::string body;
  std::string ex;
  std::string reason;

  static verdict accept() { return {}; }
  static verdict rewrite(std::string body, std::string ex = "{}") {
    return {decision::rewrite, std::move(body), std::move(ex), {}};
  }
  static verdict reject(std::string reason) {
    return {decision::reject, {}, {}, std::move(reason)};
  }
};

// A committed message, as members receive it.
struct event {
  std::string conv;
  uint64_t seq = 0;
  uint64_t mid = 0;
  std::string from;
  std::string device;
  std::string type;
  std::string body;
  std::string ex;
  int64_t ts = 0;   // ms since the Unix epoch
};

// What a bot sends: as `as_user` (any valid user id the plugin picks, e.g.
// "echo"; a member of `conv`), deduplicated by (as_user, cmid) like any
// client's send.
struct bot_message {
  std::string as_user;
  std::string conv;
  std::string cmid;
  std::string type = "text";
  std::string body;
  std::string ex = "{}";
};

struct bot_ack {
  uint64_t seq = 0;
  uint64_t mid = 0;
  int64_t ts = 0;
  bool dup = false;   // the cmid was committed before: the original's seq
};

// ---- the actors a plugin implements (one per hook it registers)

// May accept, rewrite or reject; the engine waits for it up to the deadline.
using before_persist_actor =
  caf::typed_actor<caf::replies_to<before_persist_atom, draft>::with<verdict>>;
// Observes every committed message of the conversations it registered for.
using after_persist_actor = caf::typed_actor<caf::reacts_to<after_persist_atom, event>>;
// A member got a new inbox copy while none of its devices was online.
using offline_actor = caf::typed_actor<caf::reacts_to<offline_atom, std::string, event>>;  // user
// A device authenticated, or its connection closed: user, device.
using session_actor =
  caf::typed_actor<caf::reacts_to<connect_atom, std::string, std::string>,
                   caf::reacts_to<disconnect_atom, std::string, std::string>>;

// The engine, as a bot sees it: sends through the same path as a client.
// Errors come back as caf::error (render with system().render(err)).
using engine_actor = caf::typed_actor<caf::replies_to<bot_send_atom, bot_message>::with<bot_ack>>;

// ---- registration

enum class policy : uint8_t {
  fail_open,     // a missed deadline or a crash lets the message through
  fail_closed,   // ... rejects it (before_persist only; observers drop the call)
};

// Which calls reach a hook, and what happens when it fails. The plugin's
// entry in --plugin-config may override `deadline_ms` and `policy`
// ("fail_open" | "fail_closed").
struct hook_options {
  std::chrono::milliseconds deadline{500};
  policy on_failure = policy::fail_open;
  // Conversations whose id starts with one of these ("dm:", "g:team");
  // empty: every conversation. Conversations that match no hook pay
  // nothing for the mechanism.
  std::vector<std::string> convs;
  // ... and that have one of these users as a member (a dm: named in its
  // id; g:/r: a member as of the message). For connect/disconnect: these
  // users only. Empty: anyone.
  std::vector<std::string> members;
  // Calls waiting for an observer (after_persist, offline, session) beyond
  // this many are dropped and counted, so a stuck plugin cannot grow the
  // engine's memory.
  uint32_t max_pending = 10000;
};

template <class Handle>
using factory = std::function<Handle(caf::actor_system&)>;

// Handed to the plugin's init, valid during init only (handles and the
// system stay valid for the engine's lifetime).
class registrar {
public:
  virtual ~registrar() = default;

  // The plugin's object from --plugin-config as JSON text ("{}" if none).
  virtual const std::string& config() const = 0;
  virtual caf::actor_system& system() = 0;
  virtual engine_actor engine() = 0;
  // One line in the engine's log, prefixed with the plugin's name.
  virtual void log(const std::string& line) = 0;

  // The engine calls `make` now and again whenever the actor it made dies
  // of anything but a normal exit.
  virtual void add_before_persist(factory<before_persist_actor> make, hook_options o) = 0;
  virtual void add_after_persist(factory<after_persist_actor> make, hook_options o) = 0;
  virtual void add_offline(factory<offline_actor> make, hook_options o) = 0;
  virtual void add_session(factory<session_actor> make, hook_options o) = 0;

  // Shorthands: `fun` is a CAF actor function (a typed behavior, with or
  // without state) spawned detached, on its own thread, so that a plugin
  // that blocks (file or network I/O) never holds the engine's scheduler.
  template <class F>
  void before_persist(F fun, hook_options o = {}) {
    add_before_persist(detached(fun), std::move(o));
  }
  template <class F>
  void after_persist(F fun, hook_options o = {}) {
    add_after_persist(detached(fun), std::move(o));
  }
  template <class F>
  void offline(F fun, hook_options o = {}) {
    add_offline(detached(fun), std::move(o));
  }
  template <class F>
  void session(F fun, hook_options o = {}) {
    add_session(detached(fun), std::move(o));
  }

  // Called by IMENGINE_PLUGIN's entry point before init.
  virtual void begin(const char* plugin_name) = 0;

private:
  template <class F>
  static auto detached(F fun) {
    return [fun](caf::actor_system& sys) { return sys.spawn<caf::detached>(fun); };
  }
};

// ---- inspection, so that CAF can carry the payloads in messages

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, draft& x) {
  return f(caf::meta::type_name("imengine.plugin.draft"), x.conv, x.from, x.device, x.type,
           x.body, x.ex);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verdict& x) {
  return f(caf::meta::type_name("imengine.plugin.verdict"), x.what, x.body, x.ex, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(caf::meta::type_name("imengine.plugin.event"), x.conv, x.seq, x.mid, x.from,
           x.device, x.type, x.body, x.ex, x.ts);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bot_message& x) {
  return f(caf::meta::type_name("imengine.plugin.bot_message"), x.as_user, x.conv, x.cmid,
           x.type, x.body, x.ex);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bot_ack& x) {
  return f(caf::meta::type_name("imengine.plugin.bot_ack"), x.seq, x.mid, x.ts, x.dup);
}

} // namespace imengine::plugin

// The one C entry point of a plugin. The engine calls it with its own API
// version; a plugin built against another one reports its version and
// returns without touching the registrar (whose shape may differ).
// `init` is `bool init(imengine::plugin::registrar&)`; false refuses start.
#define IMENGINE_PLUGIN(NAME, INIT)                                                        \
  extern "C" __attribute__((visibility("default"))) int imengine_plugin_entry(            \
    uint32_t host_api, uint32_t* plugin_api, ::imengine::plugin::registrar* reg) {        \
    *plugin_api = IMENGINE_PLUGIN_API_VERSION;                                             \
    if (host_api != IMENGINE_PLUGIN_API_VERSION)                                           \
      return 1;                                                                            \
    reg->begin(NAME);                                                                      \
    return INIT(*reg) ? 0 : 2;                                                             \
  }
