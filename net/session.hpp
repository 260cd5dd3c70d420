#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/container/deque.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "net/gather_stream.hpp"
#include "net/server.hpp"

namespace imengine::net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The two transports one port may serve: each session type below is
// instantiated for both (session.cpp, http.cpp), the code written once.
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// What a WebSocket runs on once the HTTP session hands it over: a plain
// connection on its socket alone (the websocket stream keeps its own
// timeouts, and tcp_stream's would cost every idle connection ~0.5 KiB of
// timers and a heavier pending read), a TLS one on its TLS stream.
template <class Stream>
struct ws_transport {
  using type = Stream;
  static Stream take(Stream& s) { return std::move(s); }
};
template <>
struct ws_transport<plain_stream> {
  using type = tcp::socket;
  static tcp::socket take(plain_stream& s) { return s.release_socket(); }
};

struct server_shared;

// Logs a failed operation, except the ones that only mean "closed".
void fail(beast::error_code ec, const char* what);

// What the registry and the frame sinks see of a WebSocket connection,
// whatever its transport. Strand-only, like the session itself.
class ws_conn : public std::enable_shared_from_this<ws_conn> {
public:
  virtual ~ws_conn() = default;
  // Queue a frame / begin a close after the queued frames.
  virtual void enqueue(frame_bytes data, bool binary) = 0;
  virtual void start_close(uint16_t code, std::string reason) = 0;
  // Strand-only (or once no io thread runs): drops the connection at once,
  // without a closing handshake, and reports on_close now.
  virtual void abort() = 0;
};

// One WebSocket connection, on its own strand: reads frames into its
// frame_handler, writes what is queued in one socket write per batch
// (gather_stream), closes with a code.
template <class Stream>
class ws_session : public ws_conn {
public:
  // Holds one of the server's WebSocket slots (server_shared::take_slot,
  // taken by the caller) until it finishes.
  ws_session(Stream&& stream, std::shared_ptr<server_shared> shared);
  ~ws_session() override;

  // Accepts the upgrade request read by the HTTP session.
  void run(http::request<http::string_body> req);

  void enqueue(frame_bytes data, bool binary) override;
  void start_close(uint16_t code, std::string reason) override;
  void abort() override;

private:
  std::shared_ptr<ws_session> me() {
    return std::static_pointer_cast<ws_session>(shared_from_this());
  }
  void on_accept(beast::error_code ec);
  void do_read();
  void on_first(beast::error_code ec, std::size_t bytes);   // the first bytes of a frame
  void on_read(beast::error_code ec, std::size_t bytes);
  void do_write();
  void on_write(beast::error_code ec);
  void do_close();
  void drop_queue();
  void finish();   // once: unregister, drop the queue, on_close

  websocket::stream<gather_stream<Stream>> ws_;
  std::shared_ptr<server_shared> shared_;
  // Our strand, shared weakly with the sinks (see server_shared.hpp).
  std::shared_ptr<const asio::any_io_executor> strand_;
  // The frame being read, read straight into the string on_frame takes
  // (moved out, so no copy and nothing held between frames).
  std::string frame_;
  std::optional<asio::dynamic_string_buffer<char, std::char_traits<char>, std::allocator<char>>>
    frame_buf_;
  std::shared_ptr<frame_handler> handler_;
  std::shared_ptr<std::atomic<size_t>> backlog_;
  // boost's deque takes no memory while empty (std::deque holds 576 bytes
  // even then); idle connections are most connections.
  boost::container::deque<std::pair<frame_bytes, bool>> queue_;
  bool writing_ = false;
  bool closing_ = false;    // no more frames accepted
  bool close_sent_ = false;
  bool finished_ = false;
  bool slot_ = true;        // our max_conns slot, given back by finish()
  uint16_t close_code_ = 1000;
  asio::steady_timer close_timer_{ws_.get_executor()};   // bounds a 4003 close
  std::string close_reason_;
};

// Reads HTTP requests (keep-alive; over TLS after its handshake): answers
// /healthz, /metrics and /, serves the server API under /api/ (key and
// size checked here, the answer from the http_handlers' api callback), 404
// for anything else, and hands an upgrade at /ws over to a ws_session.
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
public:
  http_session(Stream&& stream, std::shared_ptr<server_shared> shared);
  void run();

  // Strand-only: writes the answer to the API request being served.
  void answer_api(api_response r);
  // The session's strand; its copies must go before the io_context does.
  asio::any_io_executor executor() { return stream_.get_executor(); }

private:
  using request = http::request<http::string_body>;

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }
  void on_handshake(beast::error_code ec);   // TLS only
  void do_read();
  // The header first: a client that sent `Expect: 100-continue` waits for
  // the interim 100 before it sends the body (RFC 9110, 10.1.1).
  void on_header(beast::error_code ec, std::size_t bytes);
  void read_body();
  void on_read(beast::error_code ec, std::size_t bytes);
  void on_write(bool close, beast::error_code ec, std::size_t bytes);
  void end_output();   // our side done: FIN (after close_notify over TLS), then maybe linger
  void respond(const request& req);   // fills res_
  void serve_api(request& req);       // answers now, or later through answer_api
  void refuse_body(const request& req);   // a body over max_body: 413
  void refuse_header();                   // the header over max_header: 414 or 431
  // Answers `status` and closes; `unread`: the request was not read to its
  // end, so drain what still comes (see linger).
  void refuse(http::status status, refusal why, const char* body, bool unread);
  void upgrade(const request& req);       // hands over to a ws_session, or refuses
  bool may_read_metrics(const request& req) const;
  void reply(const request& req, http::status status, const char* type, std::string body);
  void write();
  void linger();   // after a refused body: drain what the client still sends, then close

  Stream stream_;
  std::shared_ptr<server_shared> shared_;
  beast::flat_buffer buffer_;
  // A fresh parser per request: its body limit is per message.
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;   // one request at a time
  http::response<http::empty_body> continue_{http::status::continue_, 11};
  bool close_after_ = false;   // close after answering (a refused request)
  bool unread_ = false;        // and drain first: the request was not read to its end
  bool loopback_peer_ = false;
  size_t requests_ = 0;        // requests read whole on this connection
  std::array<char, 4096> drain_{};
  size_t drained_ = 0;
};

extern template class ws_session<tcp::socket>;
extern template class ws_session<tls_stream>;
extern template class http_session<plain_stream>;
extern template class http_session<tls_stream>;

} // namespace imengine::net
