// A workaround for caf-openssl 0.17.6 as Debian builds it (CAF logging
// compiled out): after a TLS connection fails (a handshake refused, a
// peer closing a redundant link) its error stays in the network thread's
// OpenSSL error queue, because only CAF's log statements would drain it.
// The next SSL_read of any other, healthy link then hears SSL_ERROR_SSL
// from SSL_get_error instead of "want read" and CAF closes that link too:
// one bad connection to the cluster port took the node's links down
// (seen in integration_cluster_tls_test). OpenSSL requires an empty
// queue before each TLS I/O call; these wrappers empty it, then call
// libssl's own function. They take effect because the executable exports
// them (engine/node/CMakeLists.txt), so libcaf_openssl's calls bind here.
#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

template <class F>
F next_symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto real = next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto real = next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_connect(SSL* ssl) {
  static auto real = next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

int SSL_accept(SSL* ssl) {
  static auto real = next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

} // extern "C"
