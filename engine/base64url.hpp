#pragma once

#include <optional>
#include <string>
#include <string_view>

// base64url without padding (RFC 4648 section 5), as JWTs and the
// conversation list's cursor carry it.
namespace imengine {

std::string b64url_encode(std::string_view in);
// Strict: no padding, no foreign characters, and unused trailing bits must
// be zero, so every byte string has exactly one accepted encoding.
std::optional<std::string> b64url_decode(std::string_view in);

} // namespace imengine
