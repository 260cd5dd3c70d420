// word_filter: rejects a message whose body contains one of the words of
// {"word_filter":{"words":[...]}} (case-insensitive). The sender gets
// `error rejected`; nothing is stored and no seq is used.

#include <algorithm>
#include <cctype>

#include <imengine/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

using namespace imengine::plugin;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

before_persist_actor::behavior_type filter(before_persist_actor::pointer,
                                           std::vector<std::string> words) {
  return {
    [=](before_persist_atom, const draft& d) {
      auto body = lower(d.body);
      for (const auto& w : words)
        if (body.find(w) != std::string::npos)
          return verdict::reject("the message contains a filtered word");
      return verdict::accept();
    },
  };
}

bool init(registrar& r) {
  auto cfg = nlohmann::json::parse(r.config());
  std::vector<std::string> words;
  for (const auto& w : cfg.value("words", nlohmann::json::array())) {
    if (!w.is_string() || w.get<std::string>().empty()) {
      r.log("words must be non-empty strings");
      return false;
    }
    words.push_back(lower(w.get<std::string>()));
  }
  r.log("filtering " + std::to_string(words.size()) + " words");
  r.before_persist([words](before_persist_actor::pointer self) { return filter(self, words); });
  return true;
}

} // namespace

IMENGINE_PLUGIN("word_filter", init)
