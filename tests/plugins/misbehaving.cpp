// A deliberately broken plugin for the tests: a before_persist hook that
// misbehaves on every other call, and hooks that record what they see.
// Settings ({"misbehaving":{...}}):
//   "mode": "crash"   every other call throws (the actor dies)
//           "hang"    every other call sleeps `sleep_ms` before answering
//           "rewrite" every call rewrites the body to "rewritten: <body>"
//   "convs": [...]    the conversations it registers for (default: all)
//   "events": PATH    appends "connect|disconnect <user> <device>" and
//                     "after <conv> <seq> <body>" lines
// The call counter lives in the library, not the actor: it survives the
// restarts the crashes cause.

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <imengine/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

using namespace imengine::plugin;
using json = nlohmann::json;

std::atomic<uint64_t> calls{0};

struct settings {
  std::string mode;
  std::chrono::milliseconds sleep{0};
};

before_persist_actor::behavior_type misbehave(before_persist_actor::pointer, settings s) {
  return {
    [=](before_persist_atom, const draft& d) {
      auto n = calls.fetch_add(1);
      if (s.mode == "rewrite")
        return verdict::rewrite("rewritten: " + d.body, R"({"by":"misbehaving"})");
      if (n % 2 == 1) {
        if (s.mode == "crash")
          throw std::runtime_error("misbehaving: crash on call " + std::to_string(n));
        std::this_thread::sleep_for(s.sleep);
      }
      return verdict::accept();
    },
  };
}

void append(const std::string& path, const std::string& line) {
  std::ofstream(path, std::ios::app) << line << '\n' << std::flush;
}

bool init(registrar& r) {
  auto cfg = json::parse(r.config());
  settings s{cfg.value("mode", std::string{}),
             std::chrono::milliseconds(cfg.value("sleep_ms", 0))};
  hook_options o;
  for (const auto& c : cfg.value("convs", json::array()))
    o.convs.push_back(c.get<std::string>());
  if (!s.mode.empty())
    r.before_persist([s](before_persist_actor::pointer self) { return misbehave(self, s); }, o);
  auto events = cfg.value("events", std::string{});
  if (events.empty())
    return true;
  r.session([events](session_actor::pointer) -> session_actor::behavior_type {
    return {
      [=](connect_atom, const std::string& u, const std::string& d) {
        append(events, "connect " + u + " " + d);
      },
      [=](disconnect_atom, const std::string& u, const std::string& d) {
        append(events, "disconnect " + u + " " + d);
      },
    };
  });
  r.after_persist(
    [events](after_persist_actor::pointer) -> after_persist_actor::behavior_type {
      return {
        [=](after_persist_atom, const event& e) {
          append(events, "after " + e.conv + " " + std::to_string(e.seq) + " " + e.body);
        },
      };
    },
    o);
  return true;
}

} // namespace

IMENGINE_PLUGIN("misbehaving", init)
