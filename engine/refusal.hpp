#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace imengine {

// Why the HTTP layer turned a request or connection away before any actor
// saw it; counted in imengine_refused_total{reason="..."}.
enum class refusal : unsigned char {
  max_conns,          // upgrade beyond --max-conns: 503
  origin,             // upgrade from an Origin not in --allowed-origins: 403
  bad_key,            // Sec-WebSocket-Key not base64 of 16 bytes: 400
  handshake_timeout,  // request not complete within --handshake-timeout-ms: closed
  metrics_auth,       // /metrics or /cluster without loopback or token: 403
  uri_too_long,       // request target too long: 414
  header_too_large,   // header section too large: 431
  body_too_large,     // body over the limit: 413
  tls_handshake,      // TLS handshake failed (e.g. plain HTTP on a TLS port): closed
};

inline constexpr size_t refusal_count = static_cast<size_t>(refusal::tls_handshake) + 1;

constexpr std::string_view to_string(refusal r) noexcept {
  switch (r) {
    case refusal::max_conns: return "max_conns";
    case refusal::origin: return "origin";
    case refusal::bad_key: return "bad_key";
    case refusal::handshake_timeout: return "handshake_timeout";
    case refusal::metrics_auth: return "metrics_auth";
    case refusal::uri_too_long: return "uri_too_long";
    case refusal::header_too_large: return "header_too_large";
    case refusal::body_too_large: return "body_too_large";
    case refusal::tls_handshake: return "tls_handshake";
  }
  return "unknown";
}

// Every reason's name, in enum order (the metric's label values).
inline const std::vector<std::string_view>& refusal_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (size_t i = 0; i < refusal_count; ++i)
      v.push_back(to_string(static_cast<refusal>(i)));
    return v;
  }();
  return names;
}

} // namespace imengine
