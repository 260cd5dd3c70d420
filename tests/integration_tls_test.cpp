// TLS for clients through the real binary: with --tls-cert/--tls-key the
// one port serves wss:// and https:// only, with the certificate it was
// given (verified against its CA); plain HTTP or WebSocket on that port,
// and a TLS handshake that never comes, are closed and counted without
// disturbing the connected clients; partial or unloadable TLS flags stop
// the start with exit 2 naming the file.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdexcept>

#include "tests/support/engine_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_client.hpp"
#include "tests/support/pki.hpp"

using namespace imengine::testing;

namespace {

// ca.pem signs server.pem; other.pem is a second CA, whose key does not
// belong to server.pem and which did not sign it.
struct server_pki : pki {
  server_pki() {
    make_ca("ca", "imengine test CA");
    make_ca("other", "another CA");
    make_cert("server", "ca");
    write("not-pem.pem", "this is not a certificate\n");
  }
  std::vector<std::string> flags() const {
    return {"--tls-cert=" + path("server.pem"), "--tls-key=" + path("server.key")};
  }
};

std::string refused_reason(const std::string& reason) {
  return "imengine_refused_total{reason=\"" + reason + "\"}";
}

// The metrics, read over TLS like everything else on the port.
std::optional<uint64_t> tls_metric(uint16_t port, const std::string& series) {
  return metric(https_get(port, "/metrics").body, series);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("wss:// and https:// on one port with the configured certificate") {
  server_pki certs;
  temp_dir data;
  engine_process engine(data.str(), certs.flags());
  REQUIRE(engine.tls());   // it announced wss://

  // The certificate served is the one configured: it verifies against its
  // CA, and not against another.
  auto health = https_get(engine.port(), "/healthz", certs.path("ca.pem"));
  CHECK(health.status == 200);
  CHECK_THROWS_AS(https_get(engine.port(), "/healthz", certs.path("other.pem")),
                  std::runtime_error);

  // A verified wss:// client and an unverified one talk as over ws://.
  imengine::net::ws_client alice("127.0.0.1", engine.port(), "/ws",
                                 imengine::net::ws_client::tls_options{certs.path("ca.pem")});
  auto ok = alice.request({{"t", "auth"}, {"user", "alice"}, {"device", "phone"}});
  REQUIRE(ok["t"] == "auth_ok");
  auto bob = engine.login("bob", "phone");
  auto ack = alice.request(send_frame("dm:alice:bob", "c1", "over wss"));
  REQUIRE(ack["t"] == "ack");
  CHECK(ack["seq"] == 1);
  auto push = bob->wait_for(is_push(1), 10000ms);
  CHECK(push["from"] == "alice");
  CHECK(push["body"] == "over wss");
  // msgpack frames too.
  auto carol = engine.login("carol", "tablet", true);
  auto ack2 = carol->request_msgpack(send_frame("dm:bob:carol", "c2", "binary over wss"));
  CHECK(ack2["t"] == "ack");
  CHECK(bob->wait_for(is_push(2), 10000ms)["body"] == "binary over wss");
}

TEST_CASE("plain HTTP and ws:// on the TLS port are closed and counted") {
  server_pki certs;
  temp_dir data;
  auto flags = certs.flags();
  flags.push_back("--handshake-timeout-ms=300");
  engine_process engine(data.str(), flags);
  auto alice = engine.login("alice", "phone");

  CHECK_THROWS_AS(imengine::net::ws_client("127.0.0.1", engine.port()), std::runtime_error);
  {
    http_client plain(engine.port());
    try {
      auto r = plain.raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      CHECK(r.status != 200);   // no HTTP answer comes over a plain connection
    } catch (const std::runtime_error&) {
      // also fine: what came back was not HTTP, or nothing came
    }
    CHECK(plain.closed_by_server());
  }
  CHECK(tls_metric(engine.port(), refused_reason("tls_handshake")).value_or(0) >= 2);

  // A connection that never starts its handshake is closed at the deadline.
  {
    http_client silent(engine.port());
    CHECK(silent.closed_by_server());
  }
  CHECK(tls_metric(engine.port(), refused_reason("handshake_timeout")).value_or(0) >= 1);

  // The client that was there all along is undisturbed.
  auto ack = alice->request(send_frame("dm:alice:bob", "c1", "still here"));
  CHECK(ack["t"] == "ack");
  CHECK(ack["seq"] == 1);
}

TEST_CASE("partial or unloadable TLS flags exit 2 naming the file") {
  server_pki certs;
  temp_dir data;
  auto run = [&](const std::string& tls_flags) {
    auto r = run_engine_command("--port=0 --data=" + data.str() + " " + tls_flags);
    CAPTURE(tls_flags);
    CAPTURE(r.output);
    CHECK(r.exit_code == 2);
    return r.output;
  };
  auto cert = certs.path("server.pem"), key = certs.path("server.key");
  CHECK(contains(run("--tls-cert=" + cert), "--tls-cert needs --tls-key"));
  CHECK(contains(run("--tls-key=" + key), "--tls-key needs --tls-cert"));
  CHECK(contains(run("--tls-cert=" + certs.path("none.pem") + " --tls-key=" + key),
                 certs.path("none.pem")));
  CHECK(contains(run("--tls-cert=" + certs.path("not-pem.pem") + " --tls-key=" + key),
                 certs.path("not-pem.pem")));
  CHECK(contains(run("--tls-cert=" + cert + " --tls-key=" + certs.path("none.key")),
                 certs.path("none.key")));
  auto mismatch = run("--tls-cert=" + cert + " --tls-key=" + certs.path("other.key"));
  CHECK(contains(mismatch, certs.path("other.key")));
}
