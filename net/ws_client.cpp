#include "net/ws_client.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <openssl/ssl.h>

namespace imengine::net {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

namespace {

// The caller side: what the public members read, under mtx.
struct client_state {
  mutable std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::pair<json, bool>> in;   // (frame, binary)
  bool closed = false;
  bool last_binary = false;
  std::optional<uint16_t> code;

  std::atomic<size_t> pings{0};
  std::atomic<int64_t> next_req{1'000'000};   // clear of small hand-written reqs
  std::atomic<bool> stopped{false};   // io thread stopped (frozen or destroyed)
};

// The io side, whatever the transport.
struct client_io {
  virtual ~client_io() = default;
  virtual void write(std::string data, bool binary) = 0;
  virtual void stop_io() = 0;
  virtual void drop() = 0;   // closes the socket
  virtual void pause() = 0;
  virtual void resume() = 0;
  virtual void close() = 0;  // starts a closing handshake
};

json decode(const std::string& data, bool binary) {
  try {
    return binary ? json::from_msgpack(data) : json::parse(data);
  } catch (const std::exception&) {
    return json(data);
  }
}

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

std::unique_ptr<asio::ssl::context> client_context(const std::optional<ws_client::tls_options>& tls) {
  if (!tls)
    return nullptr;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (tls->ca_file.empty()) {
    ctx->set_verify_mode(asio::ssl::verify_none);
  } else {
    ctx->load_verify_file(tls->ca_file);
    ctx->set_verify_mode(asio::ssl::verify_peer);
  }
  return ctx;
}

template <class Stream>
struct basic_io final : client_io {
  client_state& st;
  // io side: touched only by the io thread once it runs.
  asio::io_context ioc{1};
  std::unique_ptr<asio::ssl::context> ctx;   // TLS only; before the stream
  websocket::stream<Stream> ws;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  beast::flat_buffer buffer;
  std::deque<std::pair<std::string, bool>> out;   // written one at a time
  bool writing = false;
  bool paused = false;    // io thread only
  bool reading = false;   // io thread only

  static constexpr bool tls = std::is_same_v<Stream, tls_stream>;

  static websocket::stream<Stream> make_stream(asio::io_context& ioc, asio::ssl::context* ctx) {
    if constexpr (tls)
      return websocket::stream<Stream>(ioc, *ctx);
    else
      return websocket::stream<Stream>(ioc);
  }

  basic_io(client_state& s, const std::optional<ws_client::tls_options>& t)
    : st(s), ctx(client_context(t)), ws(make_stream(ioc, ctx.get())) {}

  ~basic_io() override {
    stop_io();
    drop();
  }

  void start() {
    // Beast answers pings by itself while a read is pending; we only count.
    ws.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping)
        st.pings++;
    });
    guard.emplace(ioc.get_executor());
    do_read();
    thread = std::thread([this] { ioc.run(); });
  }

  void connect(const std::string& host, uint16_t port, const std::string& path) {
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, std::to_string(port));
    auto& stream = beast::get_lowest_layer(ws);
    beast::error_code result;
    bool done = false;
    const char* step = "connect";
    auto upgrade = [&] {
      websocket::stream_base::timeout t{};
      t.handshake_timeout = std::chrono::seconds(10);
      t.idle_timeout = websocket::stream_base::none();   // the server pings, we answer
      t.keep_alive_pings = false;
      ws.set_option(t);
      step = "handshake";
      ws.async_handshake(host + ":" + std::to_string(port), path,
                         [&](beast::error_code ec) {
                           result = ec;
                           done = true;
                         });
    };
    stream.expires_after(std::chrono::seconds(10));
    stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
      if ((result = ec)) {
        done = true;
        return;
      }
      stream.socket().set_option(tcp::no_delay(true));
      if constexpr (tls) {
        step = "TLS handshake";
        stream.expires_after(std::chrono::seconds(10));
        ws.next_layer().async_handshake(asio::ssl::stream_base::client,
                                        [&](beast::error_code ec) {
                                          if ((result = ec)) {
                                            done = true;
                                            return;
                                          }
                                          stream.expires_never();
                                          upgrade();
                                        });
      } else {
        stream.expires_never();   // from here on the websocket's own timeouts
        upgrade();
      }
    });
    // Not run(): a failed handshake leaves the stream's timer armed.
    while (!done && ioc.run_one() > 0) {
    }
    if (!done)
      result = asio::error::operation_aborted;   // cannot happen: a timer ends it
    ioc.restart();
    if (result)
      throw std::runtime_error(std::string("ws_client: ") + step + " to " + host + ":"
                               + std::to_string(port) + path + " failed: " + result.message());
  }

  void do_read() {
    reading = true;
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      std::lock_guard<std::mutex> g(st.mtx);
      if (ec) {
        st.closed = true;
        if (ec == websocket::error::closed)
          st.code = static_cast<uint16_t>(ws.reason().code);
        st.cv.notify_all();
        return;
      }
      st.in.emplace_back(decode(beast::buffers_to_string(buffer.data()), ws.got_binary()),
                         ws.got_binary());
      buffer.consume(buffer.size());
      st.cv.notify_all();
      if (paused)
        reading = false;   // resume() reads on
      else
        do_read();
    });
  }

  void write(std::string data, bool binary) override {
    asio::post(ioc, [this, data = std::move(data), binary]() mutable {
      out.emplace_back(std::move(data), binary);
      if (!writing)
        do_write();
    });
  }

  void do_write() {
    writing = true;
    ws.binary(out.front().second);
    ws.async_write(asio::buffer(out.front().first), [this](beast::error_code ec, std::size_t) {
      writing = false;
      out.pop_front();
      if (ec)
        out.clear();   // the read side reports the closed connection
      else if (!out.empty())
        do_write();
    });
  }

  void stop_io() override {
    if (st.stopped.exchange(true))
      return;
    guard.reset();
    ioc.stop();
    if (thread.joinable())
      thread.join();
  }

  void drop() override {
    beast::error_code ec;
    beast::get_lowest_layer(ws).socket().close(ec);
  }

  void pause() override {
    asio::post(ioc, [this] { paused = true; });
  }

  void resume() override {
    asio::post(ioc, [this] {
      paused = false;
      if (!reading)
        do_read();
    });
  }

  void close() override {
    asio::post(ioc, [this] {
      ws.async_close(websocket::close_code::normal, [this](beast::error_code ec) {
        // The close reply is read by the close operation, not by our read.
        std::lock_guard<std::mutex> g(st.mtx);
        if (!ec && !st.code)
          st.code = static_cast<uint16_t>(ws.reason().code);
        st.closed = true;
        st.cv.notify_all();
      });
    });
  }
};

template <class Stream>
std::unique_ptr<client_io> open_io(client_state& st, const std::string& host, uint16_t port,
                                   const std::string& path,
                                   const std::optional<ws_client::tls_options>& tls) {
  auto io = std::make_unique<basic_io<Stream>>(st, tls);
  try {
    io->connect(host, port, path);
  } catch (const boost::system::system_error& e) {   // resolve, CA file
    throw std::runtime_error(std::string("ws_client: cannot connect: ") + e.what());
  }
  io->start();
  return io;
}

} // namespace

struct ws_client::impl : client_state {
  std::unique_ptr<client_io> io;   // destroyed first: it refers to the state
};

ws_client::ws_client(const std::string& host, uint16_t port, const std::string& path)
  : ws_client(host, port, path, std::nullopt) {}

ws_client::ws_client(const std::string& host, uint16_t port, const std::string& path,
                     std::optional<tls_options> tls)
  : impl_(std::make_unique<impl>()) {
  auto& st = static_cast<client_state&>(*impl_);
  impl_->io = tls ? open_io<tls_stream>(st, host, port, path, tls)
                  : open_io<beast::tcp_stream>(st, host, port, path, tls);
}

ws_client::~ws_client() {
  impl_->io.reset();   // stops the io thread, drops the connection
}

void ws_client::send_text(std::string s) {
  impl_->io->write(std::move(s), false);
}

void ws_client::send_binary(std::string s) {
  impl_->io->write(std::move(s), true);
}

void ws_client::send(const json& frame) {
  send_text(frame.dump());
}

void ws_client::send_msgpack(const json& frame) {
  auto bytes = json::to_msgpack(frame);
  send_binary(std::string(bytes.begin(), bytes.end()));
}

std::optional<json> ws_client::next(ms timeout) {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock(d.mtx);
  if (!d.cv.wait_for(lock, timeout, [&] { return !d.in.empty() || d.closed; }) || d.in.empty())
    return std::nullopt;
  auto [frame, binary] = std::move(d.in.front());
  d.in.pop_front();
  d.last_binary = binary;
  return std::move(frame);
}

json ws_client::wait_for(const std::function<bool(const json&)>& pred, ms timeout) {
  auto& d = *impl_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(d.mtx);
  size_t scanned = 0;   // frames already rejected by pred stay rejected
  while (true) {
    for (; scanned < d.in.size(); ++scanned) {
      if (pred(d.in[scanned].first)) {
        auto [frame, binary] = std::move(d.in[scanned]);
        d.in.erase(d.in.begin() + static_cast<std::ptrdiff_t>(scanned));
        d.last_binary = binary;
        return std::move(frame);
      }
    }
    if (d.closed)
      throw std::runtime_error("closed before a matching frame arrived (ws_client)");
    if (d.cv.wait_until(lock, deadline) == std::cv_status::timeout && scanned == d.in.size()
        && !d.closed)
      throw std::runtime_error("timeout waiting for a matching frame (ws_client)");
  }
}

json ws_client::request_as(json frame, bool msgpack, ms timeout) {
  auto req = impl_->next_req++;
  frame["req"] = req;
  if (msgpack)
    send_msgpack(frame);
  else
    send(frame);
  return wait_for(
    [req](const json& f) {
      auto it = f.is_object() ? f.find("req") : f.end();
      return f.is_object() && it != f.end() && it->is_number_integer() && it->get<int64_t>() == req;
    },
    timeout);
}

json ws_client::request(json frame, ms timeout) {
  return request_as(std::move(frame), false, timeout);
}

json ws_client::request_msgpack(json frame, ms timeout) {
  return request_as(std::move(frame), true, timeout);
}

bool ws_client::last_was_binary() const {
  std::lock_guard<std::mutex> g(impl_->mtx);
  return impl_->last_binary;
}

bool ws_client::wait_closed(ms timeout) {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock(d.mtx);
  return d.cv.wait_for(lock, timeout, [&] { return d.closed; });
}

std::optional<uint16_t> ws_client::close_code() const {
  std::lock_guard<std::mutex> g(impl_->mtx);
  return impl_->code;
}

size_t ws_client::pings_received() const {
  return impl_->pings.load();
}

void ws_client::pause() {
  impl_->io->pause();
}

void ws_client::resume() {
  impl_->io->resume();
}

void ws_client::freeze() {
  // With the io thread gone the socket stays open and nobody reads it: the
  // kernel still takes the server's bytes, but no pong ever goes back.
  impl_->io->stop_io();
}

void ws_client::close() {
  if (impl_->stopped)
    return;
  impl_->io->close();
  wait_closed(ms(2000));
}

} // namespace imengine::net
