#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/result.hpp"

namespace imengine {

// Verifies an HS256 JWT: signature with `secret`, header alg HS256, `sub`
// a string, `exp` (if present) a number not before `now_s`. Returns `sub`.
// Errors: unauthorized with the reason.
result<std::string> verify_jwt(std::string_view token, std::string_view secret,
                               int64_t now_s);

// Makes an HS256 JWT with these claims (used by tests and examples).
std::string make_jwt(std::string_view sub, int64_t exp_s, std::string_view secret);

} // namespace imengine
