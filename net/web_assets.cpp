#include "net/web_assets.hpp"

namespace imengine::net {

const web_asset* find_web_asset(std::string_view target) {
  target = target.substr(0, target.find('?'));
  if (target == "/")
    target = "/index.html";
  for (const auto& a : web_assets())
    if (a.path == target)
      return &a;
  return nullptr;
}

const char* content_type_of(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext;
  };
  if (ends(".html"))
    return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs"))
    return "text/javascript; charset=utf-8";
  if (ends(".css"))
    return "text/css; charset=utf-8";
  if (ends(".svg"))
    return "image/svg+xml";
  if (ends(".png"))
    return "image/png";
  if (ends(".json"))
    return "application/json";
  return "application/octet-stream";
}

} // namespace imengine::net
