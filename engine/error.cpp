#include "engine/error.hpp"

namespace imengine {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::none: return "none";
    case errc::bad_frame: return "bad_frame";
    case errc::unknown_type: return "unknown_type";
    case errc::unauthorized: return "unauthorized";
    case errc::forbidden: return "forbidden";
    case errc::not_found: return "not_found";
    case errc::too_large: return "too_large";
    case errc::rate_limited: return "rate_limited";
    case errc::overloaded: return "overloaded";
    case errc::unavailable: return "unavailable";
    case errc::rejected: return "rejected";
    case errc::storage: return "storage";
    case errc::internal: return "internal";
    case errc::bad_config: return "bad_config";
  }
  // A value outside the enum (e.g. a corrupt byte from the wire) is an
  // engine fault, never a client's.
  return "internal";
}

} // namespace imengine
