// The JWT verifier (engine/jwt.hpp): arbitrary tokens are refused unless
// signed with the secret; what it accepts has a user and a future exp.
#include <cstdlib>
#include <string_view>

#include "engine/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view token(reinterpret_cast<const char*>(data), size);
  constexpr int64_t now = 1'700'000'000;
  auto claims = imengine::verify_jwt(token, "fuzz-secret", now, 86400);
  if (claims && (claims->sub.empty() || claims->exp_s <= now || claims->exp_s > now + 86400))
    std::abort();
  // The same token under another secret: only a forgery would pass.
  if (imengine::verify_jwt(token, "another-secret", now))
    std::abort();
  return 0;
}
