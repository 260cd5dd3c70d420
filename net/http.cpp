#include "net/session.hpp"

#include <chrono>

#include "net/server_shared.hpp"

namespace imengine::net {

http_session::http_session(tcp::socket&& socket, std::shared_ptr<server_shared> shared)
  : stream_(std::move(socket)), shared_(std::move(shared)) {
}

void http_session::run() {
  // Start on the session's strand: the socket was accepted onto it.
  asio::dispatch(stream_.get_executor(),
                 beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

void http_session::do_read() {
  req_ = {};
  stream_.expires_after(std::chrono::seconds(30));   // idle keep-alive connections
  http::async_read(stream_, buffer_, req_,
                   beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec)
    return fail(ec, "http read");
  if (websocket::is_upgrade(req_) && req_.target() == "/ws") {
    stream_.expires_never();   // the WebSocket keeps its own timeouts
    std::make_shared<ws_session>(stream_.release_socket(), shared_)->run(std::move(req_));
    return;
  }
  respond();
  http::async_write(stream_, res_,
                    beast::bind_front_handler(&http_session::on_write, shared_from_this(),
                                              res_.need_eof()));
}

void http_session::respond() {
  auto reply = [this](http::status status, const char* type, std::string body) {
    res_ = {};
    res_.result(status);
    res_.version(req_.version());
    res_.keep_alive(req_.keep_alive());
    res_.set(http::field::server, "imengine");
    res_.set(http::field::content_type, type);
    res_.body() = std::move(body);
    res_.prepare_payload();
  };
  auto target = req_.target();
  if (req_.method() != http::verb::get)
    reply(http::status::method_not_allowed, "text/plain", "method not allowed\n");
  else if (target == "/healthz")
    reply(http::status::ok, "text/plain", "ok\n");
  else if (target == "/metrics")
    reply(http::status::ok, "text/plain; version=0.0.4",
          shared_->http.metrics ? shared_->http.metrics() : std::string{});
  else if (target == "/cluster" && shared_->http.cluster)
    reply(http::status::ok, "application/json", shared_->http.cluster());
  else if (target == "/" || target == "/index.html")
    reply(http::status::ok, "text/html; charset=utf-8", demo_page);
  else   // also an upgrade anywhere but /ws
    reply(http::status::not_found, "text/plain", "not found\n");
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t) {
  if (ec)
    return fail(ec, "http write");
  if (close) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

} // namespace imengine::net
