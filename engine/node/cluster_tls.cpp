#include "engine/node/cluster_tls.hpp"

#include <filesystem>
#include <fstream>
#include <memory>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace imengine {

namespace {

// OpenSSL's reason for the last failure, and a clean error queue.
std::string openssl_reason() {
  std::string out;
  if (auto code = ERR_peek_last_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    out = buf;
  }
  ERR_clear_error();
  return out.empty() ? "unknown error" : out;
}

// An encrypted key would make OpenSSL prompt on the terminal: refuse it.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

std::string unreadable(const char* flag, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return std::string(flag) + " " + path + " is a directory";
  std::ifstream in(path, std::ios::binary);
  if (in && in.peek() != std::ifstream::traits_type::eof())
    return {};
  return std::string(flag) + " " + path + (in ? " is empty" : " cannot be read");
}

} // namespace

std::string check_cluster_tls_files(const engine_config& e) {
  for (auto [flag, path] : {std::pair{"--cluster-cert", &e.cluster_cert},
                            std::pair{"--cluster-key", &e.cluster_key},
                            std::pair{"--cluster-ca", &e.cluster_ca}})
    if (auto problem = unreadable(flag, *path); !problem.empty())
      return problem;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!ctx)
    return "cluster TLS: " + openssl_reason();
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_passphrase);
  // The key first: loaded after the certificate, a key that is not its
  // own fails as if it were no key at all.
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), e.cluster_key.c_str(), SSL_FILETYPE_PEM) != 1)
    return "--cluster-key " + e.cluster_key + " holds no unencrypted PEM private key ("
           + openssl_reason() + ")";
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), e.cluster_cert.c_str()) != 1)
    return "--cluster-cert " + e.cluster_cert + " holds no PEM certificate (" + openssl_reason()
           + ")";
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return "--cluster-key " + e.cluster_key + " is not the key of --cluster-cert "
           + e.cluster_cert;
  if (SSL_CTX_load_verify_locations(ctx.get(), e.cluster_ca.c_str(), nullptr) != 1)
    return "--cluster-ca " + e.cluster_ca + " holds no PEM CA certificate (" + openssl_reason()
           + ")";
  // Every peer verifies this certificate against the same CA: one it did
  // not sign (or expired, or not for TLS use) would be refused by all.
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  for (int purpose : {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT}) {
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> v(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
    if (!v
        || X509_STORE_CTX_init(v.get(), SSL_CTX_get_cert_store(ctx.get()),
                               SSL_CTX_get0_certificate(ctx.get()), chain)
             != 1)
      return "cluster TLS: " + openssl_reason();
    X509_STORE_CTX_set_purpose(v.get(), purpose);
    if (X509_verify_cert(v.get()) != 1) {
      ERR_clear_error();
      return "--cluster-cert " + e.cluster_cert + " does not verify against --cluster-ca "
             + e.cluster_ca + " as TLS "
             + (purpose == X509_PURPOSE_SSL_SERVER ? "server" : "client") + ": "
             + X509_verify_cert_error_string(X509_STORE_CTX_get_error(v.get()));
    }
  }
  return {};
}

} // namespace imengine
