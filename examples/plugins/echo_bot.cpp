// echo_bot: user `echo`. A text message in a dm with it (dm:<user>:echo)
// gets "echo: <body>" back in the same conversation, from `echo`, sent
// through the engine like any client's message.

#include <imengine/plugin.hpp>

namespace {

using namespace imengine::plugin;

constexpr const char* bot = "echo";

after_persist_actor::behavior_type echo(after_persist_actor::pointer self, engine_actor engine) {
  return {
    [=](after_persist_atom, const event& e) {
      if (e.from == bot || e.type != "text")
        return;   // its own echoes, and system messages
      // The cmid follows from the original: a call repeated after a crash
      // is deduplicated by the engine, never echoed twice.
      bot_message m{bot, e.conv, "echo-" + std::to_string(e.mid), "text", "echo: " + e.body, "{}"};
      self->request(engine, std::chrono::seconds(10), bot_send_atom::value, std::move(m))
        .then([](const bot_ack&) {},
              [self](caf::error& err) {
                caf::aout(self) << "echo_bot: send failed: " << self->system().render(err)
                                << std::endl;
              });
    },
  };
}

bool init(registrar& r) {
  hook_options o;
  o.convs = {"dm:"};
  o.members = {bot};   // only dms with the bot reach it
  auto engine = r.engine();
  r.after_persist([engine](after_persist_actor::pointer self) { return echo(self, engine); }, o);
  return true;
}

} // namespace

IMENGINE_PLUGIN("echo_bot", init)
