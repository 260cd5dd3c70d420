#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

// Test support: a small blocking HTTP/1.1 client on 127.0.0.1 (raw
// sockets), for the server API's tests and its benchmark.
namespace imengine::testing {

struct http_response {
  int status = 0;
  std::map<std::string, std::string> headers;   // names lower-cased
  std::string body;

  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

using http_headers = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection: requests one after another. Throws
// std::runtime_error when the connection fails or an answer does not
// arrive within the timeout.
class http_client {
public:
  explicit http_client(uint16_t port,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  http_response request(const std::string& method, const std::string& target,
                        const std::string& body = {}, const http_headers& headers = {});

  // Sends raw bytes, then reads one answer (for malformed requests).
  http_response raw(const std::string& bytes);

  // True once the server closed the connection (within the timeout).
  bool closed_by_server();

  int fd() const { return fd_; }   // for a TLS session over this connection

private:
  void send_all(const std::string& bytes);
  http_response read_response();

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buf_;   // read but not yet consumed
};

// One request on a fresh connection (Connection: close).
http_response http_request(uint16_t port, const std::string& method, const std::string& target,
                           const std::string& body = {}, const http_headers& headers = {});

// The server API's Authorization header for `key`.
inline http_headers bearer(const std::string& key) {
  return {{"Authorization", "Bearer " + key}};
}

} // namespace imengine::testing
