#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/api_types.hpp"
#include "engine/frame_sink.hpp"
#include "engine/refusal.hpp"

namespace imengine::net {

// The inbound half of a client connection: what the server calls for each
// complete WebSocket message, on an io thread, in arrival order.
class frame_handler {
public:
  virtual ~frame_handler() = default;
  virtual void on_frame(std::string data, bool binary) = 0;
  // Called once when the connection is gone (closed by either side, dropped
  // by the heartbeat, or failed). No on_frame follows.
  virtual void on_close() = 0;
};

struct server_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                      // 0 picks a free port
  std::chrono::milliseconds heartbeat{15000}; // ping period; silent 2x -> drop
  size_t read_limit = 1 << 20;               // larger messages close with 1009
  size_t max_queue = 8192;                   // queued frames before closing 4003
  size_t max_body = 65536;                   // larger HTTP request bodies get 413
  size_t max_target = 8192;                  // longer request targets get 414
  size_t max_header = 16384;                 // larger header sections get 431 (414 if
                                             // the request line alone is too long)
  size_t max_conns = 100000;                 // open WebSockets; upgrades beyond get 503
  // A request (the first or a keep-alive one, upgrade included) must
  // arrive whole within this, else the socket is closed: slowloris.
  std::chrono::milliseconds handshake_timeout{5000};
  // Upgrades whose Origin header is present and not listed get 403;
  // empty: any origin. Compared case-insensitively.
  std::vector<std::string> allowed_origins;
  // Whether loopback peers may read /metrics and /cluster without the
  // token; false when a reverse proxy on this host makes every peer local.
  bool metrics_loopback = true;
  // PEM files: both set, the port serves TLS only (wss://, https://);
  // both empty, plain. start() throws when they do not load.
  std::string tls_cert;   // certificate chain, leaf first
  std::string tls_key;
  unsigned threads = 1;                      // io threads
};

struct http_handlers {
  std::function<std::string()> metrics;      // body of GET /metrics
  std::function<std::string()> cluster;      // body of GET /cluster (JSON)
  // Whether an Authorization header opens /metrics and /cluster to a peer
  // that is not exempt as loopback; unset: nobody but loopback (else 403).
  std::function<bool(std::string_view authorization)> metrics_authorized;
  // Counts each refusal (any io thread); may be unset.
  std::function<void(refusal)> refused;
  // The server API under /api/ (docs/API.md); unset, every /api/ path is
  // 404. A request reaches `api` only when `api_authorized` accepted its
  // Authorization header (else 401) and its body is within max_body (else
  // 413). `api` answers through its callback exactly once, from any
  // thread; a callback dropped unanswered answers 503.
  std::function<bool(std::string_view authorization)> api_authorized;
  std::function<void(api_request, std::function<void(api_response)>)> api;
};

// What server::start would find wrong with a TLS certificate chain and
// key (PEM files): nullopt when both load and match.
struct tls_problem {
  bool in_key = false;   // false: the certificate
  std::string why;
};
std::optional<tls_problem> check_tls(const std::string& cert, const std::string& key);

// Called for each accepted WebSocket (on an io thread); returns the handler
// that receives its frames. The sink stays valid as long as it is held, but
// sends to a closed connection are dropped.
using open_handler =
  std::function<std::shared_ptr<frame_handler>(std::shared_ptr<frame_sink>)>;

// Frames accepted for sending on open WebSockets and not yet written:
// all of them, and the most on one connection.
struct write_queues {
  size_t frames = 0;
  size_t longest = 0;
};

// HTTP and WebSocket on one port, plain or TLS: GET /healthz, GET /metrics, GET /
// (the browser demo client), and the WebSocket upgrade at /ws.
class server {
public:
  server(server_options opts, open_handler on_open, http_handlers http);
  ~server();   // stop()
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds, listens and starts the io threads. Returns the bound port.
  // Throws std::system_error when the address cannot be bound.
  uint16_t start();

  // Stops accepting; open connections continue.
  void stop_accepting();

  // Closes every open WebSocket with this code (1001: going away).
  void close_all(uint16_t code = 1001);

  // Any thread.
  write_queues queued_frames() const;

  // Stops accepting, closes everything, joins the io threads. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace imengine::net
