#include "net/session.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "net/server_shared.hpp"

namespace imengine::net {

namespace {

// The sink the actors hold: only a weak reference and the strand. The
// weak pointer is locked inside the posted handler, on the strand, so the
// session is never destroyed on a foreign (CAF) thread.
class session_sink : public frame_sink {
public:
  session_sink(std::weak_ptr<ws_session> s, asio::any_io_executor ex,
               std::shared_ptr<std::atomic<size_t>> backlog)
    : session_(std::move(s)), ex_(std::move(ex)), backlog_(std::move(backlog)) {}

  void send(frame_bytes data, bool binary) override {
    backlog_->fetch_add(1);
    asio::post(ex_, [w = session_, data = std::move(data), binary, b = backlog_]() mutable {
      if (auto s = w.lock())
        s->enqueue(std::move(data), binary);
      else
        b->fetch_sub(1);
    });
  }

  void close(uint16_t code, std::string reason) override {
    asio::post(ex_, [w = session_, code, reason = std::move(reason)]() mutable {
      if (auto s = w.lock())
        s->start_close(code, std::move(reason));
    });
  }

  size_t backlog() const override { return backlog_->load(); }

private:
  std::weak_ptr<ws_session> session_;
  asio::any_io_executor ex_;
  std::shared_ptr<std::atomic<size_t>> backlog_;
};

} // namespace

void fail(beast::error_code ec, const char* what) {
  if (ec == asio::error::operation_aborted || ec == websocket::error::closed
      || ec == asio::error::eof || ec == beast::error::timeout)
    return;
  spdlog::debug("net: {}: {}", what, ec.message());
}

// ---- ws_session

ws_session::ws_session(tcp::socket&& socket, std::shared_ptr<server_shared> shared)
  : ws_(std::move(socket)), shared_(std::move(shared)),
    backlog_(std::make_shared<std::atomic<size_t>>(0)) {
}

ws_session::~ws_session() {
  shared_->remove(this);
}

void ws_session::run(http::request<http::string_body> req) {
  shared_->add(shared_from_this());
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(10);
  t.idle_timeout = shared_->opts.heartbeat * 2;   // pings at half of it
  t.keep_alive_pings = true;
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "imengine");
  }));
  ws_.read_message_max(shared_->opts.read_limit);
  ws_.async_accept(req, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
}

void ws_session::on_accept(beast::error_code ec) {
  if (ec) {
    fail(ec, "accept");
    return finish();
  }
  auto sink = std::make_shared<session_sink>(weak_from_this(), ws_.get_executor(), backlog_);
  handler_ = shared_->on_open(std::move(sink));
  do_read();
}

void ws_session::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_session::on_read, shared_from_this()));
}

void ws_session::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    fail(ec, "read");
    return finish();
  }
  if (handler_ && !closing_)
    handler_->on_frame(beast::buffers_to_string(buffer_.data()), ws_.got_binary());
  buffer_.consume(buffer_.size());
  do_read();
}

void ws_session::enqueue(frame_bytes data, bool binary) {
  if (closing_ || finished_) {
    backlog_->fetch_sub(1);
    return;
  }
  queue_.emplace_back(std::move(data), binary);
  if (queue_.size() > shared_->opts.max_queue) {
    // A reader this slow would hold memory without bound: drop what it
    // did not take and close.
    auto keep = writing_ ? 1u : 0u;
    backlog_->fetch_sub(queue_.size() - keep);
    queue_.resize(keep);
    start_close(4003, "slow consumer");
    return;
  }
  if (!writing_)
    do_write();
}

void ws_session::do_write() {
  writing_ = true;
  auto& front = queue_.front();
  ws_.binary(front.second);
  ws_.async_write(asio::buffer(*front.first),
                  beast::bind_front_handler(&ws_session::on_write, shared_from_this()));
}

void ws_session::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  queue_.pop_front();
  backlog_->fetch_sub(1);
  if (ec) {
    fail(ec, "write");
    return finish();
  }
  if (!queue_.empty())
    return do_write();
  if (closing_)
    do_close();
}

void ws_session::start_close(uint16_t code, std::string reason) {
  if (closing_ || finished_)
    return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  if (!writing_)
    do_close();
}

void ws_session::do_close() {
  if (close_sent_ || finished_)
    return;
  close_sent_ = true;
  websocket::close_reason cr(static_cast<websocket::close_code>(close_code_), close_reason_);
  ws_.async_close(cr, [self = shared_from_this()](beast::error_code ec) {
    if (ec)
      fail(ec, "close");
    self->finish();
  });
}

void ws_session::finish() {
  if (finished_)
    return;
  finished_ = true;
  // Keep the frame being written: its completion handler pops it.
  auto keep = writing_ ? size_t{1} : size_t{0};
  backlog_->fetch_sub(queue_.size() - keep);
  queue_.resize(keep);
  shared_->remove(this);
  if (handler_)
    handler_->on_close();
  handler_.reset();
}

// ---- http_session

http_session::http_session(tcp::socket&& socket, std::shared_ptr<server_shared> shared)
  : stream_(std::move(socket)), shared_(std::move(shared)) {
}

void http_session::run() {
  asio::dispatch(stream_.get_executor(),
                 beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

void http_session::do_read() {
  req_ = {};
  stream_.expires_after(std::chrono::seconds(30));
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
  if (websocket::is_upgrade(req_)) {
    if (req_.target() != "/ws") {
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    stream_.expires_never();   // the WebSocket keeps its own timeouts
    std::make_shared<ws_session>(stream_.release_socket(), shared_)->run(std::move(req_));
    return;
  }
  auto res = std::make_shared<http::response<http::string_body>>();
  res->version(req_.version());
  res->keep_alive(req_.keep_alive());
  res->set(http::field::server, "imengine");
  auto target = req_.target();
  if (req_.method() != http::verb::get) {
    res->result(http::status::method_not_allowed);
    res->set(http::field::content_type, "text/plain");
    res->body() = "method not allowed\n";
  } else if (target == "/healthz") {
    res->result(http::status::ok);
    res->set(http::field::content_type, "text/plain");
    res->body() = "ok\n";
  } else if (target == "/metrics" && shared_->http.metrics) {
    res->result(http::status::ok);
    res->set(http::field::content_type, "text/plain; version=0.0.4");
    res->body() = shared_->http.metrics();
  } else if (target == "/" || target == "/index.html") {
    res->result(http::status::ok);
    res->set(http::field::content_type, "text/html; charset=utf-8");
    res->body() = demo_page;
  } else {
    res->result(http::status::not_found);
    res->set(http::field::content_type, "text/plain");
    res->body() = "not found\n";
  }
  res->prepare_payload();
  res_ = res;
  http::async_write(stream_, *res,
                    beast::bind_front_handler(&http_session::on_write, shared_from_this(),
                                              !res->keep_alive()));
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t) {
  if (ec)
    return fail(ec, "http write");
  res_.reset();
  if (close) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

} // namespace imengine::net
