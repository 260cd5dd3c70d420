#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/result.hpp"

namespace imengine {

// What a verified token grants: the user, until when.
struct jwt_claims {
  std::string sub;
  int64_t exp_s = 0;
};

// Verifies an HS256 JWT: signature with `secret`, header alg HS256, `sub`
// a string, `exp` a number after `now_s` (required: a token without it
// would be valid forever) and, with `max_ttl_s` > 0, at most that far
// ahead; `nbf`, when present, a number not after `now_s`. Errors:
// unauthorized with the reason.
result<jwt_claims> verify_jwt(std::string_view token, std::string_view secret, int64_t now_s,
                              int64_t max_ttl_s = 0);

// Makes an HS256 JWT with these claims (used by tests and examples).
std::string make_jwt(std::string_view sub, int64_t exp_s, std::string_view secret);

} // namespace imengine
