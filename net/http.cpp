#include "net/session.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "net/server_shared.hpp"
#include "net/web_assets.hpp"

namespace imengine::net {

namespace {

constexpr auto idle_timeout = std::chrono::seconds(30);      // keep-alive connections
constexpr auto linger_timeout = std::chrono::seconds(5);     // draining a refused body
constexpr size_t linger_limit = size_t{1} << 20;             // bytes drained at most

std::string error_body(const char* code, const std::string& msg) {
  return nlohmann::json{{"error", code}, {"msg", msg}}.dump() + "\n";
}

std::string_view to_std(beast::string_view s) {
  return {s.data(), s.size()};
}

bool is_api(const http::request<http::string_body>& req) {
  return req.target().starts_with("/api/");
}

// RFC 6455 4.2.1: the key is base64 of 16 bytes, i.e. 22 characters of
// the alphabet and "==". Beast takes any key of up to 24 characters.
bool valid_ws_key(beast::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=')
    return false;
  for (size_t i = 0; i < 22; ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    if (!std::isalnum(c) && c != '+' && c != '/')
      return false;
  }
  return true;
}

bool is_loopback(const tcp::endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.is_loopback();
}

// The callback an API handler answers through; its copies share one
// state. The answer (or, for a state dropped unanswered, a 503) is posted
// onto the session's strand, and the session goes with the posted
// handler: it is touched and released only there, never on the thread
// that answers. Were the server gone already (node::stop stops the actors
// first, so it is not), the session would be leaked rather than
// destroyed without its io_context.
template <class Session>
class api_answer {
public:
  api_answer(std::shared_ptr<Session> s, std::shared_ptr<io_gate> gate)
    : session_(std::move(s)), gate_(std::move(gate)) {}
  api_answer(const api_answer&) = delete;
  api_answer& operator=(const api_answer&) = delete;

  ~api_answer() {
    deliver({503, error_body("unavailable", "the request was dropped")});
  }

  void deliver(api_response r) {
    if (answered_.exchange(true))
      return;
    auto s = std::move(session_);
    auto& session = *s;
    bool posted = gate_->while_open([&] {
      asio::post(session.executor(), [s = std::move(s), r = std::move(r)]() mutable {
        s->answer_api(std::move(r));
      });
    });
    if (!posted)
      new std::shared_ptr<Session>(std::move(s));   // see above: leaked on purpose
  }

private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<io_gate> gate_;
  std::atomic<bool> answered_{false};
};

} // namespace

template <class Stream>
http_session<Stream>::http_session(Stream&& stream, std::shared_ptr<server_shared> shared)
  : stream_(std::move(stream)), shared_(std::move(shared)) {
  beast::error_code ec;
  auto peer = tcp().socket().remote_endpoint(ec);
  loopback_peer_ = !ec && is_loopback(peer);
}

template <class Stream>
void http_session<Stream>::run() {
  // Start on the session's strand: the socket was accepted onto it.
  if constexpr (std::is_same_v<Stream, tls_stream>) {
    tcp().expires_after(shared_->opts.handshake_timeout);
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->stream_.async_handshake(
        asio::ssl::stream_base::server,
        beast::bind_front_handler(&http_session::on_handshake, self));
    });
  } else {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&http_session::do_read, this->shared_from_this()));
  }
}

template <class Stream>
void http_session<Stream>::on_handshake(beast::error_code ec) {
  if (ec) {   // e.g. plain HTTP on the TLS port: closed without an answer
    shared_->count(ec == beast::error::timeout ? refusal::handshake_timeout
                                               : refusal::tls_handshake);
    return fail(ec, "tls handshake");
  }
  do_read();
}

template <class Stream>
void http_session<Stream>::do_read() {
  parser_.emplace();
  // Checked against Content-Length before the body is read, and as a
  // chunked body arrives.
  parser_->body_limit(shared_->opts.max_body);
  parser_->header_limit(static_cast<std::uint32_t>(shared_->opts.max_header));
  // One deadline for the whole request, however slowly its bytes come.
  tcp().expires_after(shared_->opts.handshake_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&http_session::on_header,
                                                    this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::on_header(beast::error_code ec, std::size_t bytes) {
  if (ec)
    return on_read(ec, bytes);   // a body over the limit is known from the header
  const auto& req = parser_->get();
  if (req.target().size() > shared_->opts.max_target)
    return refuse(http::status::uri_too_long, refusal::uri_too_long, "URI too long\n", true);
  if (parser_->is_done() || !beast::iequals(req[http::field::expect], "100-continue"))
    return read_body();
  http::async_write(stream_, continue_,
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec)
                        return fail(ec, "http write");
                      self->read_body();
                    });
}

template <class Stream>
void http_session<Stream>::read_body() {
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream)
    return end_output();
  if (ec == http::error::body_limit)
    return refuse_body(parser_->get());
  if (ec == http::error::header_limit)
    return refuse_header();
  if (ec == beast::error::timeout) {
    // Idle between keep-alive requests is no refusal; a request begun
    // and not finished (or none on a new connection) is.
    if (requests_ == 0 || parser_->got_some() || buffer_.size() > 0)
      shared_->count(refusal::handshake_timeout);
    return;   // the stream closed the socket
  }
  if (ec)
    return fail(ec, "http read");
  ++requests_;
  auto& req = parser_->get();
  if (websocket::is_upgrade(req) && req.target() == "/ws")
    return upgrade(req);
  if (is_api(req))
    return serve_api(req);
  respond(req);
  write();
}

// Checked before Beast's accept, in this order: a malformed request
// (400), one from a page we do not serve (403), then capacity (503). A
// refused upgrade closes the connection: the client would not reuse it.
template <class Stream>
void http_session<Stream>::upgrade(const request& req) {
  if (!valid_ws_key(req[http::field::sec_websocket_key]))
    return refuse(http::status::bad_request, refusal::bad_key,
                  "Sec-WebSocket-Key must be base64 of 16 bytes\n", false);
  const auto& allowed = shared_->opts.allowed_origins;
  if (auto origin = req.find(http::field::origin); origin != req.end() && !allowed.empty()
      && std::none_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
           return beast::iequals(a, origin->value());
         }))
    return refuse(http::status::forbidden, refusal::origin, "origin not allowed\n", false);
  if (!shared_->take_slot())
    return refuse(http::status::service_unavailable, refusal::max_conns,
                  "too many connections\n", false);
  tcp().expires_never();   // the WebSocket keeps its own timeouts
  using transport = ws_transport<Stream>;
  std::make_shared<ws_session<typename transport::type>>(transport::take(stream_), shared_)
    ->run(parser_->release());
}

// A request line the parser could not finish within the limit is a long
// target (414), else the fields are too large (431).
template <class Stream>
void http_session<Stream>::refuse_header() {
  auto target = parser_->get().target();
  if (target.empty() || target.size() > shared_->opts.max_target)
    return refuse(http::status::uri_too_long, refusal::uri_too_long, "URI too long\n", true);
  refuse(http::status::request_header_fields_too_large, refusal::header_too_large,
         "request header fields too large\n", true);
}

template <class Stream>
void http_session<Stream>::refuse(http::status status, refusal why, const char* body, bool unread) {
  shared_->count(why);
  close_after_ = true;
  unread_ = unread;
  res_ = {};
  res_.result(status);
  res_.version(11);
  res_.keep_alive(false);
  res_.set(http::field::server, "imengine");
  res_.set(http::field::content_type, "text/plain");
  res_.body() = body;
  res_.prepare_payload();
  write();
}

template <class Stream>
void http_session<Stream>::reply(const request& req, http::status status, const char* type,
                         std::string body) {
  res_ = {};
  res_.result(status);
  res_.version(req.version());
  res_.keep_alive(req.keep_alive() && !close_after_);
  res_.set(http::field::server, "imengine");
  res_.set(http::field::content_type, type);
  res_.body() = std::move(body);
  res_.prepare_payload();
}

template <class Stream>
void http_session<Stream>::write() {
  tcp().expires_after(idle_timeout);
  http::async_write(stream_, res_,
                    beast::bind_front_handler(&http_session::on_write, this->shared_from_this(),
                                              res_.need_eof()));
}

template <class Stream>
void http_session<Stream>::respond(const request& req) {
  auto target = req.target();
  if (req.method() != http::verb::get)
    reply(req, http::status::method_not_allowed, "text/plain", "method not allowed\n");
  else if (target == "/healthz")
    reply(req, http::status::ok, "text/plain", "ok\n");
  else if ((target == "/metrics" || (target == "/cluster" && shared_->http.cluster))
           && !may_read_metrics(req)) {
    shared_->count(refusal::metrics_auth);
    reply(req, http::status::forbidden, "text/plain",
          "loopback or Authorization: Bearer <--metrics-token> only\n");
  } else if (target == "/metrics")
    reply(req, http::status::ok, "text/plain; version=0.0.4",
          shared_->http.metrics ? shared_->http.metrics() : std::string{});
  else if (target == "/cluster" && shared_->http.cluster)
    reply(req, http::status::ok, "application/json", shared_->http.cluster());
  else if (auto asset = find_web_asset(to_std(target)))   // the browser client
    reply(req, http::status::ok, content_type_of(asset->path),
          std::string(asset->data, asset->size));
  else   // also an upgrade anywhere but /ws
    reply(req, http::status::not_found, "text/plain", "not found\n");
}

template <class Stream>
bool http_session<Stream>::may_read_metrics(const request& req) const {
  if (loopback_peer_ && shared_->opts.metrics_loopback)
    return true;
  const auto& authorized = shared_->http.metrics_authorized;
  return authorized && authorized(to_std(req[http::field::authorization]));
}

// The key first: without it a request learns nothing, not even whether
// its body was too large, and reaches no handler.
template <class Stream>
void http_session<Stream>::serve_api(request& req) {
  const auto& handlers = shared_->http;
  if (!handlers.api) {
    reply(req, http::status::not_found, "application/json",
          error_body("not_found", "no such endpoint"));
    return write();
  }
  if (!handlers.api_authorized || !handlers.api_authorized(to_std(req[http::field::authorization]))) {
    reply(req, http::status::unauthorized, "application/json",
          error_body("unauthorized", "missing or wrong API key"));
    res_.set(http::field::www_authenticate, "Bearer");
    return write();
  }
  if (close_after_) {
    shared_->count(refusal::body_too_large);
    reply(req, http::status::payload_too_large, "application/json",
          error_body("too_large",
                     "body over " + std::to_string(shared_->opts.max_body) + " bytes"));
    return write();
  }
  api_request r{std::string(req.method_string()), std::string(req.target()),
                std::move(req.body())};
  tcp().expires_never();   // the handler's own timeouts bound the wait
  auto answer = std::make_shared<api_answer<http_session>>(this->shared_from_this(), shared_->gate);
  handlers.api(std::move(r), [answer](api_response res) { answer->deliver(std::move(res)); });
}

template <class Stream>
void http_session<Stream>::answer_api(api_response r) {
  auto& req = parser_->get();
  reply(req, static_cast<http::status>(r.status), "application/json", std::move(r.body));
  write();
}

template <class Stream>
void http_session<Stream>::refuse_body(const request& req) {
  close_after_ = true;   // the body is still on its way: no next request
  unread_ = true;
  if (is_api(req)) {
    serve_api(parser_->get());
    return;
  }
  shared_->count(refusal::body_too_large);
  reply(req, http::status::payload_too_large, "text/plain", "payload too large\n");
  write();
}

template <class Stream>
void http_session<Stream>::on_write(bool close, beast::error_code ec, std::size_t) {
  if (ec)
    return fail(ec, "http write");
  if (close)
    return end_output();
  do_read();
}

template <class Stream>
void http_session<Stream>::end_output() {
  auto fin = [self = this->shared_from_this()] {
    beast::error_code ec;
    self->tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (self->unread_)
      self->linger();
  };
  if constexpr (std::is_same_v<Stream, tls_stream>) {
    // close_notify first; bounded, as a peer may never answer it.
    tcp().expires_after(linger_timeout);
    stream_.async_shutdown([fin](beast::error_code) { fin(); });
  } else {
    fin();
  }
}

// A refused body may still be arriving: closing now would reset the
// connection, and a reset can discard the 413 before the client reads
// it. Read and drop the rest (bounded in bytes and time) until the
// client closes.
template <class Stream>
void http_session<Stream>::linger() {
  tcp().expires_after(linger_timeout);
  tcp().async_read_some(   // raw bytes, TLS or not: they are dropped
    asio::buffer(drain_),
    [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (!ec && self->drained_ < linger_limit)
        self->linger();
    });
}

template class http_session<plain_stream>;
template class http_session<tls_stream>;

} // namespace imengine::net
