#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "net/server.hpp"

namespace imengine::net {

// A server context for the port: TLS 1.2 and later, the chain and key of
// `cert` and `key` (PEM). Throws std::runtime_error naming the file that
// does not load, or the key that does not match.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert,
                                                            const std::string& key);

} // namespace imengine::net
