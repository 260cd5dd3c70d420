#include "net/ws_client.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace imengine::net {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

struct ws_client::impl {
  // io side: touched only by the io thread once it runs.
  asio::io_context ioc{1};
  websocket::stream<beast::tcp_stream> ws{ioc};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  beast::flat_buffer buffer;
  std::deque<std::pair<std::string, bool>> out;   // written one at a time
  bool writing = false;

  // Caller side, under mtx.
  mutable std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::pair<json, bool>> in;   // (frame, binary)
  bool closed = false;
  bool last_binary = false;
  std::optional<uint16_t> code;

  std::atomic<size_t> pings{0};
  std::atomic<int64_t> next_req{1'000'000};   // clear of small hand-written reqs
  std::atomic<bool> stopped{false};   // io thread stopped (frozen or destroyed)

  static json decode(const std::string& data, bool binary) {
    try {
      return binary ? json::from_msgpack(data) : json::parse(data);
    } catch (const std::exception&) {
      return json(data);
    }
  }

  void connect(const std::string& host, uint16_t port, const std::string& path) {
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, std::to_string(port));
    auto& stream = beast::get_lowest_layer(ws);
    beast::error_code result;
    bool done = false;
    const char* step = "connect";
    stream.expires_after(std::chrono::seconds(10));
    stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
      if ((result = ec)) {
        done = true;
        return;
      }
      stream.expires_never();   // from here on the websocket's own timeouts
      stream.socket().set_option(tcp::no_delay(true));
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

  bool paused = false;    // io thread only
  bool reading = false;   // io thread only

  void do_read() {
    reading = true;
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      std::lock_guard<std::mutex> g(mtx);
      if (ec) {
        closed = true;
        if (ec == websocket::error::closed)
          code = static_cast<uint16_t>(ws.reason().code);
        cv.notify_all();
        return;
      }
      in.emplace_back(decode(beast::buffers_to_string(buffer.data()), ws.got_binary()),
                      ws.got_binary());
      buffer.consume(buffer.size());
      cv.notify_all();
      if (paused)
        reading = false;   // resume() reads on
      else
        do_read();
    });
  }

  void write(std::string data, bool binary) {
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

  void stop_io() {
    if (stopped.exchange(true))
      return;
    guard.reset();
    ioc.stop();
    if (thread.joinable())
      thread.join();
  }
};

ws_client::ws_client(const std::string& host, uint16_t port, const std::string& path)
  : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  try {
    d.connect(host, port, path);
  } catch (const boost::system::system_error& e) {   // resolve
    throw std::runtime_error(std::string("ws_client: cannot connect: ") + e.what());
  }
  // Beast answers pings by itself while a read is pending; we only count.
  d.ws.control_callback([&d](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping)
      d.pings++;
  });
  d.guard.emplace(d.ioc.get_executor());
  d.do_read();
  d.thread = std::thread([&d] { d.ioc.run(); });
}

ws_client::~ws_client() {
  impl_->stop_io();
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

void ws_client::send_text(std::string s) {
  impl_->write(std::move(s), false);
}

void ws_client::send_binary(std::string s) {
  impl_->write(std::move(s), true);
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
  auto& d = *impl_;
  asio::post(d.ioc, [&d] { d.paused = true; });
}

void ws_client::resume() {
  auto& d = *impl_;
  asio::post(d.ioc, [&d] {
    d.paused = false;
    if (!d.reading)
      d.do_read();
  });
}

void ws_client::freeze() {
  // With the io thread gone the socket stays open and nobody reads it: the
  // kernel still takes the server's bytes, but no pong ever goes back.
  impl_->stop_io();
}

void ws_client::close() {
  auto& d = *impl_;
  if (d.stopped)
    return;
  asio::post(d.ioc, [&d] {
    d.ws.async_close(websocket::close_code::normal, [&d](beast::error_code ec) {
      // The close reply is read by the close operation, not by our read.
      std::lock_guard<std::mutex> g(d.mtx);
      if (!ec && !d.code)
        d.code = static_cast<uint16_t>(d.ws.reason().code);
      d.closed = true;
      d.cv.notify_all();
    });
  });
  wait_closed(ms(2000));
}

} // namespace imengine::net
