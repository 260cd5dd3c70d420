// Session behaviour over a real WebSocket to the real engine binary.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>

#include "engine/ids.hpp"
#include "engine/jwt.hpp"
#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

TEST_CASE("auth returns the inbox head and node; frames before auth are refused") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--node=n7"});
  auto c = engine.connect();
  auto err = c->request({{"t", "send"}, {"conv", "dm:a:b"}, {"cmid", "x"}, {"body", "hi"}});
  CHECK(err["t"] == "error");
  CHECK(err["code"] == "unauthorized");
  auto ok = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "phone"}, {"token", ""}});
  CHECK(ok["t"] == "auth_ok");
  CHECK(ok["user"] == "alice");
  CHECK(ok["device"] == "phone");
  CHECK(ok["iseq"] == 0);
  CHECK(ok["node"] == "n7");
  auto again = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "phone"}});
  CHECK(again["code"] == "bad_frame");
  auto pong = c->request({{"t", "ping"}});
  CHECK(pong["t"] == "pong");
}

TEST_CASE("ping works before auth and echoes req") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto c = engine.connect();
  auto pong = c->request({{"t", "ping"}});
  CHECK(pong["t"] == "pong");
  CHECK(pong.contains("req"));
}

TEST_CASE("a second connection of the same user and device replaces the first with 4001") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto first = engine.login("alice", "phone");
  auto other_device = engine.login("alice", "laptop");
  auto second = engine.login("alice", "phone");
  REQUIRE(first->wait_closed(5000ms));
  CHECK(first->close_code() == 4001);
  // the replacement and the other device keep working
  CHECK(second->request({{"t", "ping"}})["t"] == "pong");
  CHECK(other_device->request({{"t", "ping"}})["t"] == "pong");
  // and the replacement gets the pushes
  auto ack = second->request(send_frame("dm:alice:bob", "c1", "hello"));
  REQUIRE(ack["t"] == "ack");
  auto push = second->wait_for(is_push(1));
  CHECK(push["body"] == "hello");
}

TEST_CASE("a connection that does not authenticate within 10 s is closed with 4000") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto silent = engine.connect();
  auto pinging = engine.connect();   // frames before auth do not count as auth
  auto authed = engine.login("alice", "phone");
  REQUIRE(pinging->request({{"t", "ping"}})["t"] == "pong");
  REQUIRE(silent->wait_closed(20000ms));
  CHECK(silent->close_code() == 4000);
  REQUIRE(pinging->wait_closed(5000ms));
  CHECK(pinging->close_code() == 4000);
  // an authenticated connection of the same age stays
  CHECK(authed->request({{"t", "ping"}})["t"] == "pong");
}

TEST_CASE("jwt auth: a valid token for the user is accepted, anything else refused") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--auth=jwt", "--jwt-secret=s3cret"});
  auto far = imengine::now_ms() / 1000 + 3600;
  auto try_auth = [&](const std::string& token) {
    auto c = engine.connect();
    return c->request({{"t", "auth"}, {"user", "alice"}, {"device", "d"}, {"token", token}});
  };
  CHECK(try_auth("")["code"] == "unauthorized");
  CHECK(try_auth(imengine::make_jwt("alice", far, "s3cret"))["t"] == "auth_ok");
  CHECK(try_auth(imengine::make_jwt("bob", far, "s3cret"))["code"] == "unauthorized");
  CHECK(try_auth(imengine::make_jwt("alice", far, "other"))["code"] == "unauthorized");
  CHECK(try_auth(imengine::make_jwt("alice", far - 7200, "s3cret"))["code"] == "unauthorized");
}

TEST_CASE("msgpack: replies follow the frame's encoding, pushes the auth's") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto m = engine.login("alice", "phone", true);
  // A JSON request on a msgpack connection gets a JSON reply ...
  auto pong = m->request({{"t", "ping"}});
  CHECK(pong["t"] == "pong");
  CHECK(m->last_was_binary() == false);
  // ... and a msgpack one a msgpack reply.
  auto ack = m->request_msgpack(send_frame("dm:alice:bob", "c1", "hi"));
  CHECK(ack["t"] == "ack");
  CHECK(m->last_was_binary() == true);
  // A push to a msgpack-authenticated connection is msgpack.
  auto bob = engine.login("bob", "web");
  bob->request(send_frame("dm:alice:bob", "b1", "yo"));
  auto push = m->wait_for([](const json& f) { return f.value("t", "") == "msg" && f["body"] == "yo"; });
  CHECK(m->last_was_binary() == true);
  CHECK(push["from"] == "bob");
}

TEST_CASE("healthz and metrics over plain HTTP on the same port") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto [status, body] = http_get(engine.port(), "/healthz");
  CHECK(status == 200);
  CHECK(body.find("ok") != std::string::npos);
  auto alice = engine.login("alice", "phone");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c1", "hi"))["t"] == "ack");
  auto [mstatus, metrics] = http_get(engine.port(), "/metrics");
  CHECK(mstatus == 200);
  CHECK(metrics.find("imengine_messages_accepted_total 1") != std::string::npos);
  CHECK(metrics.find("imengine_connections 1") != std::string::npos);
  CHECK(metrics.find("imengine_commit_batch_size_count") != std::string::npos);
  CHECK(metrics.find("imengine_commit_seconds_bucket") != std::string::npos);
}

TEST_CASE("SIGTERM stops the engine cleanly and keeps what was committed") {
  temp_dir dir;
  {
    engine_process engine(dir.str());
    auto alice = engine.login("alice", "phone");
    for (int i = 1; i <= 20; ++i)
      REQUIRE(alice->request(send_frame("dm:alice:bob", "c" + std::to_string(i), "m"))["t"] == "ack");
    CHECK(engine.terminate(5000ms) == 0);
    CHECK(alice->wait_closed(5000ms));
  }
  engine_process engine(dir.str());
  auto bob = engine.login("bob", "web");
  auto page = bob->request({{"t", "history"}, {"conv", "dm:alice:bob"}, {"after", 0}, {"limit", 100}});
  CHECK(page["msgs"].size() == 20);
}

TEST_CASE("flags are read from a config file too") {
  temp_dir dir;
  auto ini = (dir.path / "engine.ini").string();
  std::ofstream(ini) << "[global]\nnode=\"n42\"\nmax-frame=1000\n";
  engine_process engine((dir.path / "data").string(), {"--config-file=" + ini});
  auto c = engine.connect();
  auto ok = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "d"}});
  CHECK(ok["node"] == "n42");
  c->send_text(R"({"t":"send","conv":"dm:alice:bob","cmid":"x","body":")" + std::string(1200, 'x') + "\"}");
  CHECK(c->wait_for(is_type("error"))["code"] == "too_large");
}
