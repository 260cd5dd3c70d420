// The server API's request decoding (engine/api_codec.hpp): targets (path
// and query) and JSON bodies, through every body parser.
#include <string_view>

#include "engine/api_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imengine;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto t = parse_target(text)) {
    (void)parse_api_convs(*t);
    (void)parse_api_limit(*t, 50);
    (void)parse_api_history("dm:a:b", *t);
    for (const auto& s : t->path) {
      (void)path_conv(s), (void)path_group(s), (void)path_user(s);
    }
  }
  if (auto body = parse_body(text)) {
    (void)parse_api_send(*body);
    (void)parse_api_group_create(*body);
    (void)parse_api_members_change(*body);
    (void)parse_api_token(*body);
  }
  return 0;
}
