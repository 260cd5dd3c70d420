// gather_stream on a real loopback TCP connection: the server side is Beast's
// websocket::stream over the layer, the client a plain Beast client in its
// own thread, so every frame the layer builds is parsed by Beast's reader.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "net/gather_stream.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using imengine::net::gather_stream;

namespace {

// The stream under the layer, counting the writes that reach it.
struct counting_stream {
  using executor_type = beast::tcp_stream::executor_type;
  beast::tcp_stream next;
  int* writes;

  executor_type get_executor() { return next.get_executor(); }
  beast::tcp_stream& next_layer() { return next; }
  template <class B, class H>
  auto async_read_some(const B& b, H&& h) { return next.async_read_some(b, std::forward<H>(h)); }
  template <class B, class H>
  auto async_write_some(const B& b, H&& h) {
    ++*writes;
    return next.async_write_some(b, std::forward<H>(h));
  }
};

template <class H>
void async_teardown(beast::role_type role, counting_stream& s, H&& h) {
  beast::async_teardown(role, s.next, std::forward<H>(h));
}

struct message {
  std::string data;
  bool binary;
};

// One accepted connection: the server side runs on `io` in the test thread,
// the client reads in its own thread until the close (or an error).
struct fixture {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  int writes = 0;
  std::vector<message> received;
  std::vector<std::string> pings;
  websocket::close_reason closed_with;
  std::thread client;
  std::optional<websocket::stream<gather_stream<counting_stream>>> ws;

  fixture() {
    auto port = acceptor.local_endpoint().port();
    client = std::thread([this, port] { run_client(port); });
    tcp::socket s(io);
    acceptor.accept(s);
    ws.emplace(counting_stream{beast::tcp_stream(std::move(s)), &writes});
    bool accepted = false;
    ws->async_accept([&](beast::error_code ec) {
      REQUIRE_FALSE(ec);
      accepted = true;
    });
    run_until([&] { return accepted; });
    writes = 0;   // the handshake's own write is not what the tests count
  }

  ~fixture() {
    if (client.joinable())
      client.join();
  }

  void run_client(unsigned short port) {
    asio::io_context cio;
    websocket::stream<tcp::socket> c(cio);
    c.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    c.handshake("127.0.0.1", "/ws");
    c.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
      if (kind == websocket::frame_type::ping)
        pings.emplace_back(payload);
    });
    for (;;) {
      beast::flat_buffer buf;
      beast::error_code ec;
      c.read(buf, ec);
      if (ec) {
        closed_with = c.reason();
        return;
      }
      received.push_back({beast::buffers_to_string(buf.data()), c.got_binary()});
    }
  }

  template <class Pred>
  void run_until(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      if (io.stopped())   // it stops whenever it runs out of work
        io.restart();
      io.run_one_for(std::chrono::milliseconds(100));
    }
    REQUIRE(pred());
  }

  beast::error_code flush() {
    bool done = false;
    beast::error_code result;
    ws->next_layer().async_flush([&](beast::error_code ec) {
      result = ec;
      done = true;
    });
    run_until([&] { return done; });
    return result;
  }

  // Closes from the server side and waits for the client to see it.
  void close(uint16_t code) {
    bool done = false;
    ws->async_close(websocket::close_reason(static_cast<websocket::close_code>(code), "bye"), [&](beast::error_code ec) {
      CHECK_FALSE(ec);
      done = true;
    });
    run_until([&] { return done; });
    client.join();
  }
};

} // namespace

TEST_CASE("frames of every length encoding arrive whole, in order, with their flag") {
  fixture f;
  std::vector<message> sent;
  for (size_t n : {0, 1, 125, 126, 127, 65535, 65536, 300000})
    sent.push_back({std::string(n, static_cast<char>('a' + n % 26)), n % 2 == 1});
  for (auto& m : sent)
    f.ws->next_layer().append_frame(m.data, m.binary);
  CHECK_FALSE(f.flush());
  CHECK(f.ws->next_layer().pending() == 0);
  f.close(4001);
  REQUIRE(f.received.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    CHECK(f.received[i].data == sent[i].data);
    CHECK(f.received[i].binary == sent[i].binary);
  }
  CHECK(f.closed_with.code == 4001);
}

TEST_CASE("many queued frames reach the socket in one write") {
  fixture f;
  for (int i = 0; i < 50; ++i)
    f.ws->next_layer().append_frame("frame " + std::to_string(i), false);
  CHECK(f.writes == 0);   // appending writes nothing
  CHECK_FALSE(f.flush());
  CHECK(f.writes == 1);
  f.close(1000);
  REQUIRE(f.received.size() == 50);
  CHECK(f.received[49].data == "frame 49");
}

TEST_CASE("Beast's own frames go out between whole frames, in call order") {
  fixture f;
  auto& out = f.ws->next_layer();
  out.append_frame("before", false);
  bool pinged = false;
  // The layer reports Beast's write done at once; the bytes leave with the
  // flush, after "before" and ahead of "after".
  f.ws->async_ping("p1", [&](beast::error_code ec) {
    CHECK_FALSE(ec);
    pinged = true;
  });
  out.append_frame("after", false);
  CHECK_FALSE(f.flush());
  f.run_until([&] { return pinged; });
  f.close(1000);
  REQUIRE(f.received.size() == 2);
  CHECK(f.received[0].data == "before");
  CHECK(f.received[1].data == "after");
  REQUIRE(f.pings.size() == 1);
  CHECK(f.pings[0] == "p1");
}

TEST_CASE("a flush with nothing pending completes, on a later turn") {
  fixture f;
  bool done = false;
  f.ws->next_layer().async_flush([&](beast::error_code ec) {
    CHECK_FALSE(ec);
    done = true;
  });
  CHECK_FALSE(done);   // never inline
  f.run_until([&] { return done; });
  f.close(1000);
}

TEST_CASE("after the peer is gone, flushes report the failure") {
  fixture f;
  f.close(1000);   // the client has read the close and left
  auto& out = f.ws->next_layer();
  // Writes to a closed socket fail (the first may still be taken by the
  // kernel, so write until one fails), and every later flush reports it.
  beast::error_code ec;
  std::string big(1 << 16, 'x');
  for (int i = 0; i < 100 && !ec; ++i) {
    out.append_frame(big, true);
    ec = f.flush();
  }
  REQUIRE(ec);
  out.append_frame("late", false);
  CHECK(f.flush() == ec);
}
