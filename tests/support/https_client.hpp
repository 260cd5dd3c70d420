#pragma once

#include <cstdint>
#include <string>

#include "tests/support/http_client.hpp"

namespace imengine::testing {

// One GET over TLS on a fresh connection (Connection: close). With a CA
// file the server's certificate must verify against it. Throws
// std::runtime_error when the connection or the TLS handshake fails.
http_response https_get(uint16_t port, const std::string& target,
                        const std::string& ca_file = {});

} // namespace imengine::testing
