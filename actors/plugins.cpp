#include "actors/plugins.hpp"

#include <algorithm>

#include "engine/rules.hpp"

namespace imengine {

const char* to_string(hook h) {
  switch (h) {
    case hook::before_persist: return "before_persist";
    case hook::after_persist: return "after_persist";
    case hook::offline: return "offline";
    case hook::session: return "session";
  }
  return "?";
}

bool hook_matches(const plugin::hook_options& o, const conv_id& conv,
                  const std::vector<std::string>& members) {
  if (!o.convs.empty()
      && std::none_of(o.convs.begin(), o.convs.end(),
                      [&](const std::string& p) { return conv.name.rfind(p, 0) == 0; }))
    return false;
  if (o.members.empty())
    return true;
  return std::any_of(o.members.begin(), o.members.end(), [&](const std::string& u) {
    return conv.kind == conv_kind::dm ? dm_member(conv, u)
                                      : std::find(members.begin(), members.end(), u)
                                          != members.end();
  });
}

bool hook_takes_user(const plugin::hook_options& o, const std::string& user) {
  return o.members.empty() || std::find(o.members.begin(), o.members.end(), user) != o.members.end();
}

namespace {

template <class Handle>
void pick(const hook_slots<Handle>& all, hook_slots<Handle>& out, const conv_id& conv,
          const std::vector<std::string>& members) {
  for (const auto& slot : all)
    if (hook_matches(slot->options(), conv, members))
      out.push_back(slot);
}

using counter = std::atomic<uint64_t> hook_counters::*;

template <class Handle>
void render_slots(std::string& out, const std::string& name, counter c,
                  const hook_slots<Handle>& slots, hook h) {
  for (const auto& s : slots)
    out += name + "{plugin=\"" + s->plugin() + "\",hook=\"" + to_string(h) + "\"} "
           + std::to_string((s->counters.*c).load(std::memory_order_relaxed)) + "\n";
}

} // namespace

conv_hooks plugin_registry::for_conv(const conv_id& conv,
                                     const std::vector<std::string>& members) const {
  conv_hooks h;
  pick(before, h.before, conv, members);
  pick(after, h.after, conv, members);
  pick(offline, h.offline, conv, members);
  return h;
}

void plugin_registry::render(std::string& out) const {
  if (before.empty() && after.empty() && offline.empty() && session.empty())
    return;
  struct family {
    const char* name;
    const char* help;
    counter c;
  };
  static const family families[] = {
    {"calls", "hook calls made to plugin actors", &hook_counters::calls},
    {"failures", "hook calls that missed their deadline or met a dead actor",
     &hook_counters::failures},
    {"rejected", "messages a before_persist hook refused (fail-closed included)",
     &hook_counters::rejected},
    {"dropped", "observer calls dropped over max_pending", &hook_counters::dropped},
    {"restarts", "plugin actors respawned after a crash", &hook_counters::restarts},
  };
  for (const auto& f : families) {
    auto name = std::string("imengine_plugin_") + f.name + "_total";
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " counter\n";
    render_slots(out, name, f.c, before, hook::before_persist);
    render_slots(out, name, f.c, after, hook::after_persist);
    render_slots(out, name, f.c, offline, hook::offline);
    render_slots(out, name, f.c, session, hook::session);
  }
}

} // namespace imengine
