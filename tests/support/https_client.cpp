#include "tests/support/https_client.hpp"

#include <sys/socket.h>

#include <memory>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace imengine::testing {

http_response https_get(uint16_t port, const std::string& target, const std::string& ca_file) {
  http_client c(port);   // the TCP connection; TLS is spoken over its socket
  auto fail = [](const std::string& what) {
    char buf[256] = "";
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    return std::runtime_error("https_get: " + what + ": " + buf);
  };
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx)
    throw fail("SSL_CTX_new");
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
      throw fail("CA file " + ca_file);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  timeval tv{10, 0};   // bounds every blocking read below
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  SSL_set_fd(ssl.get(), c.fd());
  if (SSL_connect(ssl.get()) != 1)
    throw fail("handshake");
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())) <= 0)
    throw fail("write");
  std::string all;
  char tmp[16384];
  int n;
  while ((n = SSL_read(ssl.get(), tmp, sizeof(tmp))) > 0)
    all.append(tmp, static_cast<size_t>(n));
  auto head_end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos)
    throw std::runtime_error("https_get: bad answer: " + all);
  http_response out;
  out.status = std::stoi(all.substr(9, 3));
  out.body = all.substr(head_end + 4);   // Connection: close: the body runs to the end
  return out;
}

} // namespace imengine::testing
