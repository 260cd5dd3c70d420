#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

// The browser client (examples/web), compiled into the engine so that
// `GET /` serves it wherever the binary runs. Generated at build time by
// cmake/embed_files.cmake.
namespace imengine::net {

struct web_asset {
  std::string_view path;   // "/index.html", "/imclient.js", ...
  const char* data;
  size_t size;
};

const std::vector<web_asset>& web_assets();

// The asset a GET target names ("/" is /index.html; a query is ignored),
// nullptr if none.
const web_asset* find_web_asset(std::string_view target);

// The Content-Type for an asset's path, by its extension.
const char* content_type_of(std::string_view path);

} // namespace imengine::net
