// offline_push: the shape of a push-notification plugin. For each new
// inbox copy whose user had no device online it appends one JSON line
// {"user":..,"conv":..,"seq":..,"from":..} to {"offline_push":{"file":PATH}},
// where a real deployment would call APNs or FCM.

#include <fstream>

#include <imengine/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

using namespace imengine::plugin;

offline_actor::behavior_type pusher(offline_actor::pointer, std::string path) {
  auto out = std::make_shared<std::ofstream>(path, std::ios::app);
  return {
    [=](offline_atom, const std::string& user, const event& e) {
      nlohmann::json line{{"user", user}, {"conv", e.conv}, {"seq", e.seq}, {"from", e.from}};
      *out << line.dump() << '\n' << std::flush;   // whole lines for a reader tailing it
    },
  };
}

bool init(registrar& r) {
  auto cfg = nlohmann::json::parse(r.config());
  auto path = cfg.value("file", std::string{});
  if (path.empty()) {
    r.log("needs {\"file\": PATH}");
    return false;
  }
  if (!std::ofstream(path, std::ios::app)) {
    r.log("cannot open " + path);
    return false;
  }
  r.offline([path](offline_actor::pointer self) { return pusher(self, path); });
  return true;
}

} // namespace

IMENGINE_PLUGIN("offline_push", init)
