#include "net/session.hpp"

#include <chrono>
#include <type_traits>

#include <boost/asio/ssl/error.hpp>
#include <spdlog/spdlog.h>

#include "net/server_shared.hpp"

namespace imengine::net {

namespace {

// The sink the actors hold: weak references to the session and to its
// strand, the server's io gate and the backlog counter, nothing else. The
// session's weak pointer is locked inside the posted handler, on the strand:
// locking it on a foreign (CAF) thread could make that thread the last owner
// and destroy the websocket off its strand. Sinks may outlive the server:
// once its gate is shut they drop what they are given.
class session_sink : public frame_sink {
public:
  session_sink(std::weak_ptr<ws_conn> s, std::weak_ptr<const asio::any_io_executor> strand,
               std::shared_ptr<io_gate> gate, std::shared_ptr<std::atomic<size_t>> backlog)
    : session_(std::move(s)), strand_(std::move(strand)), gate_(std::move(gate)),
      backlog_(std::move(backlog)) {}

  void send(frame_bytes data, bool binary) override {
    // Counted before the post so that backlog() covers frames on their way
    // to the strand too; whoever drops a frame takes it off again.
    backlog_->fetch_add(1);
    auto posted = gate_->post(strand_, [w = session_, data = std::move(data), binary,
                                        b = backlog_]() mutable {
      if (auto s = w.lock())
        s->enqueue(std::move(data), binary);
      else
        b->fetch_sub(1);
    });
    if (!posted)
      backlog_->fetch_sub(1);
  }

  void close(uint16_t code, std::string reason) override {
    gate_->post(strand_, [w = session_, code, reason = std::move(reason)]() mutable {
      if (auto s = w.lock())
        s->start_close(code, std::move(reason));
    });
  }

  size_t backlog() const override { return backlog_->load(); }

private:
  std::weak_ptr<ws_conn> session_;
  std::weak_ptr<const asio::any_io_executor> strand_;
  std::shared_ptr<io_gate> gate_;
  std::shared_ptr<std::atomic<size_t>> backlog_;
};

} // namespace

void fail(beast::error_code ec, const char* what) {
  // These only say that the connection is gone, which the caller handles.
  if (ec == asio::error::operation_aborted || ec == websocket::error::closed
      || ec == asio::error::eof || ec == beast::error::timeout
      || ec == asio::ssl::error::stream_truncated)   // a TLS peer gone without close_notify
    return;
  spdlog::debug("net: {}: {}", what, ec.message());
}

template <class Stream>
ws_session<Stream>::ws_session(Stream&& stream, std::shared_ptr<server_shared> shared)
  : ws_(std::move(stream)), shared_(std::move(shared)),
    strand_(std::make_shared<const asio::any_io_executor>(ws_.get_executor())),
    backlog_(std::make_shared<std::atomic<size_t>>(0)) {
}

template <class Stream>
ws_session<Stream>::~ws_session() {
  shared_->remove(this);
  if (slot_)   // never finished: destroyed with the io_context
    shared_->give_slot();
}

template <class Stream>
void ws_session<Stream>::run(http::request<http::string_body> req) {
  shared_->add(shared_from_this(), strand_, backlog_);
  ws_.next_layer().keep_alive(weak_from_this());
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(10);   // also bounds the closing handshake
  // Beast pings after half the idle time and fails the stream when the
  // other half passes without a byte: a peer silent for 2 periods is dropped.
  t.idle_timeout = shared_->opts.heartbeat * 2;
  t.keep_alive_pings = true;
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "imengine");
  }));
  ws_.read_message_max(shared_->opts.read_limit);
  ws_.async_accept(req, beast::bind_front_handler(&ws_session<Stream>::on_accept, me()));
}

template <class Stream>
void ws_session<Stream>::on_accept(beast::error_code ec) {
  if (ec) {
    fail(ec, "ws accept");
    return finish();
  }
  if (finished_)   // aborted during the handshake
    return;
  auto sink = std::make_shared<session_sink>(weak_from_this(), strand_, shared_->gate, backlog_);
  handler_ = shared_->on_open(std::move(sink));
  do_read();
}

// A connection waits for its next frame with a buffer this small, and
// most client frames fit it whole; a longer one is read on to its end.
// Beast prepares the buffer before the read waits, so an idle connection
// holds this much (instead of Beast's 1.5 KiB read size).
constexpr std::size_t first_read = 256;

template <class Stream>
void ws_session<Stream>::do_read() {
  frame_buf_.emplace(frame_);   // frame_ is empty: on_read moved it out
  ws_.async_read_some(*frame_buf_, first_read,
                      beast::bind_front_handler(&ws_session<Stream>::on_first, me()));
}

template <class Stream>
void ws_session<Stream>::on_first(beast::error_code ec, std::size_t bytes) {
  if (ec || ws_.is_message_done())
    return on_read(ec, bytes);
  ws_.async_read(*frame_buf_, beast::bind_front_handler(&ws_session<Stream>::on_read, me()));
}

template <class Stream>
void ws_session<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    fail(ec, "ws read");
    return finish();
  }
  // After a close was requested the connection is on its way out; what the
  // peer still sends has nowhere to go.
  if (handler_ && !closing_)
    handler_->on_frame(std::move(frame_), ws_.got_binary());
  frame_ = std::string{};   // a moved-from string may keep its memory
  do_read();
}

template <class Stream>
void ws_session<Stream>::enqueue(frame_bytes data, bool binary) {
  if (closing_ || finished_) {
    backlog_->fetch_sub(1);
    return;
  }
  queue_.emplace_back(std::move(data), binary);
  if (queue_.size() > shared_->opts.max_queue) {
    // A reader this slow would hold memory without bound: drop what it did
    // not take (but the frame being written) and close.
    drop_queue();
    start_close(4003, "slow consumer");
    // A peer that stopped reading never takes the close frame either: if
    // the close has not finished soon, cut the connection.
    close_timer_.expires_after(std::chrono::seconds(2));
    close_timer_.async_wait([self = me()](beast::error_code ec) {
      if (!ec && !self->finished_)
        self->abort();
    });
    return;
  }
  if (!writing_)
    do_write();
}

template <class Stream>
void ws_session<Stream>::drop_queue() {
  // Frames already in the gather layer are being written; these are not.
  backlog_->fetch_sub(queue_.size());
  queue_.clear();
}

template <class Stream>
void ws_session<Stream>::do_write() {
  // After the peer's close frame nothing more may be written (RFC 6455 5.5.1).
  if (!ws_.is_open()) {
    drop_queue();
    return;
  }
  // Everything queued (up to a bound) leaves in one socket write.
  constexpr size_t batch_bytes = 64 * 1024;
  auto& out = ws_.next_layer();
  size_t frames = 0;
  while (!queue_.empty() && out.pending() < batch_bytes) {
    out.append_frame(*queue_.front().first, queue_.front().second);
    queue_.pop_front();
    ++frames;
  }
  backlog_->fetch_sub(frames);
  writing_ = true;
  out.async_flush(beast::bind_front_handler(&ws_session<Stream>::on_write, me()));
}

template <class Stream>
void ws_session<Stream>::on_write(beast::error_code ec) {
  writing_ = false;
  if (ec) {
    fail(ec, "ws write");
    return finish();
  }
  if (!queue_.empty())
    return do_write();
  // Drained: an idle connection keeps no queue or write-buffer memory.
  queue_.shrink_to_fit();
  ws_.next_layer().release_buffers();
  if (closing_)
    do_close();
}

template <class Stream>
void ws_session<Stream>::start_close(uint16_t code, std::string reason) {
  if (closing_ || finished_)
    return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  if (!writing_)   // else on_write closes once the queue is flushed
    do_close();
}

template <class Stream>
void ws_session<Stream>::do_close() {
  if (close_sent_ || finished_)
    return;
  close_sent_ = true;
  websocket::close_reason cr(static_cast<websocket::close_code>(close_code_), close_reason_);
  ws_.async_close(cr, [self = me()](beast::error_code ec) {
    if (ec)
      fail(ec, "ws close");
    self->finish();
  });
}

template <class Stream>
void ws_session<Stream>::abort() {
  finish();
  beast::error_code ec;
  auto& lowest = beast::get_lowest_layer(ws_);
  if constexpr (std::is_same_v<std::decay_t<decltype(lowest)>, tcp::socket>)
    lowest.close(ec);   // pending ops end as aborted
  else
    lowest.socket().close(ec);
}

template <class Stream>
void ws_session<Stream>::finish() {
  if (finished_)
    return;
  finished_ = true;
  slot_ = false;
  shared_->give_slot();
  close_timer_.cancel();
  drop_queue();
  shared_->remove(this);
  if (handler_)
    handler_->on_close();
  handler_.reset();
}

template class ws_session<tcp::socket>;
template class ws_session<tls_stream>;

} // namespace imengine::net
