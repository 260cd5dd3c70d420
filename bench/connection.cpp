#include "bench/connection.hpp"

#include <algorithm>
#include <cstdlib>
#include <deque>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace imbench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           bench_clock::now().time_since_epoch()).count();
}

uint32_t arrival_stamp(bench_clock::time_point t) {
  static const auto epoch = bench_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - epoch).count();
  return static_cast<uint32_t>(std::max<int64_t>(0, us) + 1);
}

std::string make_body(bench_clock::time_point sent, size_t size) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sent.time_since_epoch()).count();
  std::string body = "T" + std::to_string(ns) + "|";
  if (body.size() < size)
    body.append(size - body.size(), 'x');
  return body;
}

int64_t body_sent_ns(const std::string& body) {
  if (body.size() < 2 || body[0] != 'T')
    return 0;
  return std::strtoll(body.c_str() + 1, nullptr, 10);
}

struct connection::impl {
  explicit impl(asio::io_context& io) : io(io), ws(io) {}
  asio::io_context& io;
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer in;
  std::deque<std::string> out;
};

std::shared_ptr<connection> connection::create(asio::io_context& io, conn_config cfg, totals& t) {
  return std::shared_ptr<connection>(new connection(io, std::move(cfg), t));
}

connection::connection(asio::io_context& io, conn_config cfg, totals& t)
    : impl_(std::make_unique<impl>(io)), cfg_(std::move(cfg)), totals_(t) {}

connection::~connection() = default;

void connection::post(std::function<void()> fn) {
  asio::post(impl_->io, std::move(fn));
}

void connection::start(std::function<void(bool)> settled) {
  settled_ = std::move(settled);
  auto self = shared_from_this();
  beast::error_code ec;
  auto addr = asio::ip::make_address(cfg_.host, ec);
  if (ec)
    return fail("bad host " + cfg_.host);
  auto& tcp_layer = beast::get_lowest_layer(impl_->ws);
  tcp_layer.expires_after(std::chrono::seconds(10));
  tcp_layer.async_connect(tcp::endpoint(addr, cfg_.port), [this, self](beast::error_code ec) {
    if (ec)
      return fail("connect: " + ec.message());
    auto& tcp_layer = beast::get_lowest_layer(impl_->ws);
    tcp_layer.expires_never();
    tcp_layer.socket().set_option(tcp::no_delay(true));   // latency, not Nagle
    impl_->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    impl_->ws.binary(cfg_.msgpack);
    auto host = cfg_.host + ":" + std::to_string(cfg_.port);
    impl_->ws.async_handshake(host, "/ws", [this, self](beast::error_code ec) {
      if (ec)
        return fail("handshake: " + ec.message());
      send({{"t", "auth"}, {"req", 1}, {"user", cfg_.user}, {"device", cfg_.device}});
      // The read loop: one frame at a time, decoded, handled, next.
      auto loop = std::make_shared<std::function<void()>>();
      *loop = [this, self, loop] {
        impl_->ws.async_read(impl_->in, [this, self, loop](beast::error_code ec, size_t) {
          if (ec) {
            *loop = nullptr;   // break the self-reference
            return fail("read: " + ec.message());
          }
          auto data = beast::buffers_to_string(impl_->in.data());
          impl_->in.consume(impl_->in.size());
          json f = impl_->ws.got_binary() ? json::from_msgpack(data, true, false)
                                          : json::parse(data, nullptr, false);
          if (f.is_discarded() || !f.is_object())
            fail("undecodable frame");
          else
            handle(f);
          (*loop)();
        });
      };
      (*loop)();
    });
  });
}

void connection::fail(const std::string& what) {
  if (closing_)
    return;
  closing_ = true;
  if (first_error.empty())
    first_error = cfg_.user + "/" + cfg_.device + ": " + what;
  ++totals_.errors;
  if (settled_) {
    ++totals_.failed;
    auto s = std::move(settled_);
    settled_ = nullptr;
    s(false);
  }
  beast::error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().close(ignored);
}

void connection::close() {
  auto self = shared_from_this();
  post([this, self] {
    closing_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(impl_->ws).socket().close(ignored);
  });
}

void connection::handle(const json& f) {
  const auto& t = f.value("t", std::string());
  if (!ready_) {
    if (t == "auth_ok") {
      ready_ = true;
      auth_iseq = last_iseq = f.value("iseq", uint64_t{0});
      auth_node = f.value("node", std::string());
      ++totals_.ready;
      auto s = std::move(settled_);
      settled_ = nullptr;
      if (s)
        s(true);
    } else if (t != "ping" && t != "pong") {
      fail("auth refused: " + f.dump());
    }
    return;
  }
  if (t == "msg" && f.contains("seq"))
    record_push(f, true);
  else if (t == "notify") {
    // The server held back this conversation's pushes up to `seq`: those
    // never come live, the client pulls them with history.
    ++notifies;
    ++totals_.notified;
    auto conv = f.value("conv", std::string());
    auto& track = convs[conv];
    track.notified = std::max(track.notified, f.value("seq", uint64_t{0}));
    pull_gap(conv);
  } else if (!pulls_.empty() && pulls_.count(f.value("req", uint64_t{0})))
    on_pulled(f);
  else if (t == "error") {
    ++totals_.errors;
    if (first_error.empty())
      first_error = cfg_.user + "/" + cfg_.device + ": " + f.dump();
  }
  if (on_frame)
    on_frame(*this, f);
}

bool connection::mark_seen(conv_track& track, uint64_t seq, bench_clock::time_point now) {
  if (track.seen.size() <= seq) {
    track.seen.resize(std::max<size_t>(seq + 1, track.seen.size() * 2), 0);
    if (cfg_.record_arrivals)
      track.arrival.resize(track.seen.size(), 0);
  }
  if (track.seen[seq])
    return false;
  track.seen[seq] = 1;
  if (cfg_.record_arrivals)
    track.arrival[seq] = arrival_stamp(now);
  ++track.received;
  return true;
}

void connection::record_push(const json& msg, bool live) {
  auto now = bench_clock::now();
  last_push = now;
  auto seq = msg.value("seq", uint64_t{0});
  auto& track = convs[msg.value("conv", std::string())];
  bool late_candidate = seq < track.last;
  bool dup = !mark_seen(track, seq, now);
  bool late = !dup && late_candidate;
  track.last = std::max(track.last, seq);
  if (live && track.first == 0)
    track.first = seq;
  duplicated += dup;
  out_of_order += late;
  if (msg.contains("iseq")) {
    auto iseq = msg["iseq"].get<uint64_t>();
    // A regression that is not a duplicate is a reordering of the inbox.
    auto& last = live ? last_iseq : last_pulled_iseq;
    if (iseq <= last && !dup && !late)
      ++out_of_order;
    last = std::max(last, iseq);
    if (live)
      ack(iseq);
  }
  if (!dup)   // counted once: deliveries are distinct messages
    count_delivery(msg, now);
}

void connection::record_pulled(const json& msg) {
  auto now = bench_clock::now();
  auto& track = convs[msg.value("conv", std::string())];
  if (!mark_seen(track, msg.value("seq", uint64_t{0}), now)) {
    ++duplicated;
    return;
  }
  if (count_delivery(msg, now))
    ++totals_.pulled;
}

void connection::pull_gap(const std::string& conv) {
  auto& track = convs[conv];
  if (track.pull_req != 0 || track.first == 0)
    return;
  auto from = std::max(track.pulled_to, track.first - 1) + 1;
  while (from <= track.notified && from < track.seen.size() && track.seen[from])
    ++from;
  if (from > track.notified) {
    track.pulled_to = track.notified;
    return;
  }
  track.pull_req = next_req();
  pulls_[track.pull_req] = conv;
  send({{"t", "history"}, {"req", track.pull_req}, {"conv", conv}, {"after", from - 1},
        {"limit", std::min<uint64_t>(1000, track.notified - from + 1)}});
}

void connection::on_pulled(const json& f) {
  auto it = pulls_.find(f.value("req", uint64_t{0}));
  auto conv = it->second;
  pulls_.erase(it);
  auto& track = convs[conv];
  track.pull_req = 0;
  uint64_t last = 0;
  if (f.value("t", std::string()) != "history_result") {
    ++totals_.errors;
    if (first_error.empty())
      first_error = cfg_.user + "/" + cfg_.device + ": " + f.dump();
  } else
    for (auto& m : f["msgs"]) {
      auto seq = m.value("seq", uint64_t{0});
      last = std::max(last, seq);
      if (seq <= track.notified && (seq >= track.seen.size() || !track.seen[seq]))
        record_pulled(m);
    }
  // An error or an empty page gives the range up (the final pull retries).
  track.pulled_to = last != 0 ? std::max(track.pulled_to, last) : track.notified;
  pull_gap(conv);
}

bool connection::count_delivery(const json& msg, bench_clock::time_point now) {
  if (msg.value("from", std::string()) == cfg_.user) {
    ++totals_.echoed;
    return false;
  }
  ++totals_.delivered;
  auto body = msg.find("body");
  if (body != msg.end() && body->is_string()) {
    if (auto sent = body_sent_ns(body->get_ref<const std::string&>()))
      delivery_us.push_back(static_cast<uint32_t>(
        std::max<int64_t>(0, (std::chrono::duration_cast<std::chrono::nanoseconds>(
                                now.time_since_epoch()).count() - sent) / 1000)));
  }
  return true;
}

uint64_t connection::missing(const std::string& conv, const std::vector<uint64_t>& expected) const {
  auto it = convs.find(conv);
  uint64_t n = 0;
  for (auto seq : expected)
    if (it == convs.end() || seq >= it->second.seen.size() || !it->second.seen[seq])
      ++n;
  return n;
}

std::string connection::encode(const json& f) const {
  if (!cfg_.msgpack)
    return f.dump();
  std::string out;
  json::to_msgpack(f, nlohmann::detail::output_adapter<char>(out));
  return out;
}

void connection::send(const json& frame) {
  impl_->out.push_back(encode(frame));
  flush();
}

void connection::ack(uint64_t iseq) {
  ack_wanted_ = std::max(ack_wanted_, iseq);
  flush();
}

void connection::flush() {
  if (writing_ || closing_)
    return;
  // A pending cumulative ack goes first: it keeps the server's push window open.
  if (ack_wanted_ > ack_sent_) {
    impl_->out.push_front(encode({{"t", "ack"}, {"iseq", ack_wanted_}}));
    ack_sent_ = ack_wanted_;
  }
  if (impl_->out.empty())
    return;
  writing_ = true;
  auto self = shared_from_this();
  impl_->ws.async_write(asio::buffer(impl_->out.front()), [this, self](beast::error_code ec, size_t) {
    writing_ = false;
    if (ec)
      return fail("write: " + ec.message());
    impl_->out.pop_front();
    flush();
  });
}

} // namespace imbench
