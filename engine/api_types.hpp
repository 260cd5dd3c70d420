#pragma once

#include <cstdint>
#include <string>

namespace imengine {

// One request of the server API (docs/API.md) as net/ hands it over, once
// its size and its key were checked there, and the answer it gets. Plain
// values: net/ knows no CAF, the actors no Beast.
struct api_request {
  std::string method;   // "GET", "POST", ...
  std::string target;   // path and query, as sent
  std::string body;
};

struct api_response {
  uint16_t status = 200;
  std::string body;     // JSON
};

} // namespace imengine
