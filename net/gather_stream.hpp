#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace imengine::net {

// A stream layer under Beast's websocket::stream that gathers writes: the
// session appends whole server frames (header and payload) and asks for one
// flush, so every frame queued on a connection leaves in one socket write
// instead of one sendmsg each. Beast's own writes (pong, keep-alive ping,
// close) pass through the same buffer in call order, so frames never
// interleave; Beast sees each of them complete at once.
//
// Strand-only, like the session that owns it. A flush in flight holds the
// owner (keep_alive) so the layer outlives its socket operation.
template <class Next>
class gather_stream {
public:
  using next_layer_type = Next;
  using executor_type = typename Next::executor_type;

  template <class... Args>
  explicit gather_stream(Args&&... args) : next_(std::forward<Args>(args)...) {}

  next_layer_type& next_layer() { return next_; }
  const next_layer_type& next_layer() const { return next_; }
  executor_type get_executor() { return next_.get_executor(); }

  // The owner a flush in flight keeps alive (the session).
  void keep_alive(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  // Appends one unfragmented, unmasked server frame (RFC 6455 5.2).
  void append_frame(const std::string& payload, bool binary) {
    size_t n = payload.size();
    out_.push_back(static_cast<char>(0x80 | (binary ? 0x2 : 0x1)));   // FIN + opcode
    if (n < 126) {
      out_.push_back(static_cast<char>(n));
    } else if (n <= 0xffff) {
      out_.push_back(static_cast<char>(126));
      for (int shift = 8; shift >= 0; shift -= 8)
        out_.push_back(static_cast<char>((n >> shift) & 0xff));
    } else {
      out_.push_back(static_cast<char>(127));
      for (int shift = 56; shift >= 0; shift -= 8)
        out_.push_back(static_cast<char>((uint64_t{n} >> shift) & 0xff));
    }
    out_.append(payload);
  }

  // Bytes appended and not yet handed to the socket.
  size_t pending() const { return out_.size(); }

  // Writes everything appended so far; `done` runs on the strand, never
  // inline, once all of it is written or the stream has failed.
  void async_flush(std::function<void(boost::beast::error_code)> done) {
    waiters_.push_back(std::move(done));
    if (ec_ || (!writing_ && out_.empty()))
      return wake();
    kick();
  }

  // An idle connection holds no write buffer.
  void release_buffers() {
    if (!writing_ && out_.empty()) {
      std::string().swap(out_);
      std::string().swap(wire_);
    }
  }

  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& buffers, Handler&& handler) {
    return next_.async_read_some(buffers, std::forward<Handler>(handler));
  }

  // Beast's own frames: appended, written with the rest, reported written
  // at once (a write failure reaches Beast on its next write or read).
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    size_t n = 0;
    if (!ec_) {
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::const_buffer b(*it);
        out_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      kick();
    }
    boost::asio::post(get_executor(),
                      boost::beast::bind_handler(std::forward<Handler>(handler), ec_, n));
  }

private:
  void kick() {
    if (writing_ || out_.empty() || ec_)
      return;
    writing_ = true;
    wire_.swap(out_);
    out_.clear();
    boost::asio::async_write(
      next_, boost::asio::buffer(wire_),
      boost::asio::bind_executor(get_executor(),
                                 [this, keep = owner_.lock()](boost::beast::error_code ec, size_t) {
                                   on_written(ec);
                                 }));
  }

  void on_written(boost::beast::error_code ec) {
    writing_ = false;
    wire_.clear();
    if (ec && !ec_)
      ec_ = ec;
    if (!ec_ && !out_.empty())
      return kick();   // appended while this write was in flight
    wake();
  }

  void wake() {
    for (auto& done : waiters_)
      boost::asio::post(get_executor(), [done = std::move(done), ec = ec_] { done(ec); });
    waiters_.clear();
  }

  Next next_;
  std::string out_;    // appended, not yet written
  std::string wire_;   // being written
  bool writing_ = false;
  boost::beast::error_code ec_;   // the first write failure; later writes get it
  std::vector<std::function<void(boost::beast::error_code)>> waiters_;
  std::weak_ptr<void> owner_;
};

// Beast's closing handshake ends in a teardown of the stream under it: the
// gathered bytes (the close frame among them) go out first.
template <class Next, class Handler>
void async_teardown(boost::beast::role_type role, gather_stream<Next>& s, Handler&& handler) {
  // std::function wants a copyable callable; Beast's handlers move only.
  auto h = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(handler));
  s.async_flush([&s, role, h](boost::beast::error_code) {
    using boost::beast::websocket::async_teardown;
    async_teardown(role, s.next_layer(), std::move(*h));
  });
}

} // namespace imengine::net
