// The HTTP layer's limits against the real binary, spoken in raw TCP on
// 127.0.0.1: --max-conns (503), --handshake-timeout-ms (slowloris closed),
// --allowed-origins (403), Sec-WebSocket-Key checked (400), oversized
// requests answered (414/431/413), /metrics and /cluster gated by
// loopback or --metrics-token (403), each refusal counted by reason.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/support/engine_process.hpp"
#include "tests/support/http_client.hpp"

using namespace imengine::testing;

namespace {

constexpr auto good_key = "dGhlIHNhbXBsZSBub25jZQ==";   // RFC 6455's sample: 16 bytes

// One raw TCP connection: what we send is exactly what the engine reads.
class raw_conn {
public:
  explicit raw_conn(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("raw_conn: connect failed");
  }
  ~raw_conn() { close(fd_); }
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  // False once the peer closed (a refusal may come before all is sent).
  bool send_all(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // The status code of the answer's head; 0 if the connection ended
  // first, -1 if nothing complete came within the deadline.
  int status(std::chrono::milliseconds deadline = 10s) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      int r = read_some(until);
      if (r <= 0)
        return r == 0 ? 0 : -1;
    }
    if (buf_.rfind("HTTP/1.1 ", 0) != 0)
      return 0;
    return std::stoi(buf_.substr(9, 3));
  }
  const std::string& received() const { return buf_; }

  // True once the engine closed the connection (EOF or reset) within the
  // deadline; what arrives before is kept.
  bool wait_eof(std::chrono::milliseconds deadline = 10s) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (true) {
      int r = read_some(until);
      if (r == 0)
        return true;
      if (r < 0)
        return false;
    }
  }

private:
  // 1: read something, 0: closed, -1: deadline passed.
  int read_some(std::chrono::steady_clock::time_point until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return -1;
    char tmp[16384];
    auto n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0)
      return 0;
    buf_.append(tmp, static_cast<size_t>(n));
    return 1;
  }

  int fd_ = -1;
  std::string buf_;
};

std::string upgrade_request(const std::string& key, const std::string& origin = {}) {
  std::string r = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: " + key + "\r\n";
  if (!origin.empty())
    r += "Origin: " + origin + "\r\n";
  return r + "\r\n";
}

// The status a fresh connection's upgrade gets (the connection stays open).
int upgrade_status(raw_conn& c, const std::string& key, const std::string& origin = {}) {
  c.send_all(upgrade_request(key, origin));
  return c.status();
}

std::string refused_line(const char* reason, int n) {
  return std::string("imengine_refused_total{reason=\"") + reason + "\"} " + std::to_string(n)
         + "\n";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("--max-conns: upgrades beyond it get 503 and close; a closed one frees its slot") {
  temp_dir dir;
  engine_process e(dir.str(), {"--max-conns=2"});
  auto a = e.login("alice", "phone");
  auto b = e.login("bob", "phone");
  {
    raw_conn third(e.port());
    CHECK(upgrade_status(third, good_key) == 503);
    CHECK(third.wait_eof());
  }
  CHECK(wait_metric(e.port(), refused_line("max_conns", 1)));
  // Plain HTTP takes no slot.
  CHECK(http_get(e.port(), "/healthz").first == 200);
  a->close();
  // The engine frees the slot when it has seen the close, a moment after
  // the client has: try until an upgrade goes through.
  auto until = std::chrono::steady_clock::now() + 10s;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    raw_conn again(e.port());
    status = upgrade_status(again, good_key);
    if (status == 101)
      break;
    std::this_thread::sleep_for(20ms);   // poll interval
  }
  CHECK(status == 101);
  // the survivor is unaffected
  CHECK(b->request(send_frame("dm:alice:bob", "c1", "still here"))["seq"] == 1);
}

TEST_CASE("--handshake-timeout-ms: a request never finished, or never begun, is closed") {
  temp_dir dir;
  engine_process e(dir.str(), {"--handshake-timeout-ms=300"});
  raw_conn slow(e.port());
  REQUIRE(slow.send_all("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  CHECK(slow.wait_eof());
  CHECK(slow.received().empty());
  raw_conn silent(e.port());
  CHECK(silent.wait_eof());
  CHECK(wait_metric(e.port(), refused_line("handshake_timeout", 2)));
  // A complete request in time is answered as ever.
  CHECK(http_get(e.port(), "/healthz").first == 200);
}

TEST_CASE("--allowed-origins: a listed Origin or none upgrades, another gets 403") {
  temp_dir dir;
  engine_process e(dir.str(), {R"(--allowed-origins=["https://app.example","https://b.example"])"});
  {
    raw_conn c(e.port());
    CHECK(upgrade_status(c, good_key, "https://evil.example") == 403);
    CHECK(c.wait_eof());
  }
  raw_conn listed(e.port());
  CHECK(upgrade_status(listed, good_key, "https://app.example") == 101);
  raw_conn second(e.port());
  CHECK(upgrade_status(second, good_key, "https://b.example") == 101);
  raw_conn none(e.port());
  CHECK(upgrade_status(none, good_key) == 101);
  CHECK(wait_metric(e.port(), refused_line("origin", 1)));
  // Without the flag any origin upgrades.
  temp_dir dir2;
  engine_process open(dir2.str());
  raw_conn any(open.port());
  CHECK(upgrade_status(any, good_key, "https://evil.example") == 101);
}

TEST_CASE("Sec-WebSocket-Key must be base64 of 16 bytes: else 400") {
  temp_dir dir;
  engine_process e(dir.str());
  for (std::string key : {"AAAAAAA=",                       // 5 bytes: Beast would take it
                          "dGhlIHNhbXBsZSBub25jZQ",         // no padding
                          "dGhlIHNhbXBsZSBub25jZ!==",       // not the alphabet
                          ""}) {
    CAPTURE(key);
    raw_conn c(e.port());
    CHECK(upgrade_status(c, key) == 400);
    CHECK(c.wait_eof());
  }
  raw_conn ok(e.port());
  CHECK(upgrade_status(ok, good_key) == 101);
  CHECK(wait_metric(e.port(), refused_line("bad_key", 4)));
}

TEST_CASE("oversized requests are answered: 414, 431, 413") {
  temp_dir dir;
  engine_process e(dir.str());
  auto ask = [&](const std::string& bytes) {
    raw_conn c(e.port());
    c.send_all(bytes);
    auto s = c.status();
    CAPTURE(c.received());
    CHECK(c.wait_eof());
    return s;
  };
  // A long target within the header limit, and one beyond it.
  CHECK(ask("GET /" + std::string(10000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n") == 414);
  CHECK(ask("GET /" + std::string(40000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n") == 414);
  // A short request line, the fields too large.
  CHECK(ask("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(40000, 'p')
            + "\r\n\r\n")
        == 431);
  // A body over the limit (--max-frame, 65536), most of it never sent.
  CHECK(ask("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
            + std::string(1000, 'b'))
        == 413);
  CHECK(wait_metric(e.port(), refused_line("uri_too_long", 2)));
  CHECK(wait_metric(e.port(), refused_line("header_too_large", 1)));
  CHECK(wait_metric(e.port(), refused_line("body_too_large", 1)));
  // Requests within the limits still work.
  CHECK(http_get(e.port(), "/healthz?" + std::string(4000, 'q')).first == 404);
  CHECK(http_get(e.port(), "/healthz").first == 200);
}

TEST_CASE("/metrics and /cluster: loopback by default; with --metrics-require-token the token") {
  temp_dir dir;
  {
    engine_process e(dir.str());
    CHECK(http_get(e.port(), "/metrics").first == 200);
    CHECK(http_get(e.port(), "/cluster").first == 200);
  }
  engine_process e(dir.str(), {"--metrics-require-token", "--metrics-token=s3cret"});
  for (const char* target : {"/metrics", "/cluster"}) {
    CAPTURE(target);
    CHECK(http_request(e.port(), "GET", target).status == 403);
    CHECK(http_request(e.port(), "GET", target, {}, bearer("wrong")).status == 403);
    CHECK(http_request(e.port(), "GET", target, {}, {{"Authorization", "Basic s3cret"}}).status
          == 403);
    CHECK(http_request(e.port(), "GET", target, {}, bearer("s3cret")).status == 200);
  }
  // Other endpoints are not gated.
  CHECK(http_get(e.port(), "/healthz").first == 200);
  auto m = http_request(e.port(), "GET", "/metrics", {}, bearer("s3cret"));
  CAPTURE(m.body);
  CHECK(contains(m.body, refused_line("metrics_auth", 6)));
  CHECK(contains(m.body, "# TYPE imengine_refused_total counter\n"));
}

TEST_CASE("--metrics-token-file; --metrics-require-token without a token closes the endpoints") {
  temp_dir dir;
  auto file = dir.str() + "/token";
  std::ofstream(file) << "from-file\n";
  {
    engine_process e(dir.str(), {"--metrics-require-token", "--metrics-token-file=" + file});
    CHECK(http_request(e.port(), "GET", "/metrics", {}, bearer("from-file")).status == 200);
    CHECK(http_request(e.port(), "GET", "/metrics", {}, bearer("from-file2")).status == 403);
  }
  engine_process e(dir.str(), {"--metrics-require-token"});
  CHECK(http_request(e.port(), "GET", "/metrics").status == 403);
  CHECK(http_request(e.port(), "GET", "/metrics", {}, bearer("")).status == 403);
}

TEST_CASE("the new flags are checked at start") {
  temp_dir dir;
  auto data = " --port=0 --data=" + dir.str();
  auto refused = [&](const std::string& args, const std::string& part) {
    auto r = run_engine_command(args + data);
    CAPTURE(args);
    CAPTURE(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, part));
  };
  refused("--max-conns=0", "--max-conns");
  refused("--handshake-timeout-ms=0", "--handshake-timeout-ms");
  refused("--metrics-token=a --metrics-token-file=" + dir.str() + "/t", "not both");
  refused("--metrics-token-file=" + dir.str() + "/missing", dir.str() + "/missing");
}
