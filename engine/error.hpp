#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace imengine {

// Error codes of the wire protocol (docs/PROTOCOL.md, "Errors"). Carried as
// values across actor boundaries; `none` means success.
enum class errc : uint8_t {
  none = 0,
  bad_frame,
  unknown_type,
  unauthorized,
  forbidden,
  not_found,
  too_large,
  rate_limited,
  overloaded,
  unavailable,
  rejected,
  storage,
  internal,
  // Not a wire code: a flag or configuration value is malformed (startup
  // only). Last, so that the numbers above, which cross actor and node
  // boundaries inside caf::error, stay the same.
  bad_config,
};

// The code's wire name, e.g. "bad_frame".
std::string_view to_string(errc code) noexcept;

// A failed operation: the code plus a human-readable reason.
struct failure {
  errc code = errc::internal;
  std::string msg;
};

} // namespace imengine
