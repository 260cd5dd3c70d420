#include "net/tls.hpp"

#include <stdexcept>

#include <openssl/ssl.h>

namespace imengine::net {

namespace ssl = boost::asio::ssl;

namespace {

// The context, or what failed; loading the certificate first lets
// OpenSSL check that the key belongs to it.
std::shared_ptr<ssl::context> load(const std::string& cert, const std::string& key,
                                   std::optional<tls_problem>& problem) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                   | ssl::context::no_sslv3 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) {
    problem = tls_problem{false, ec.message()};
    return nullptr;
  }
  ctx->use_private_key_file(key, ssl::context::pem, ec);
  if (ec) {
    problem = tls_problem{true, ec.message()};
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    problem = tls_problem{true, "does not match the certificate"};
    return nullptr;
  }
  return ctx;
}

} // namespace

std::optional<tls_problem> check_tls(const std::string& cert, const std::string& key) {
  std::optional<tls_problem> problem;
  load(cert, key, problem);
  return problem;
}

std::shared_ptr<ssl::context> make_tls_context(const std::string& cert, const std::string& key) {
  std::optional<tls_problem> problem;
  auto ctx = load(cert, key, problem);
  if (!ctx)
    throw std::runtime_error((problem->in_key ? "TLS key " + key : "TLS certificate " + cert)
                             + ": " + problem->why);
  return ctx;
}

} // namespace imengine::net
