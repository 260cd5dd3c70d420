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
  // Re-auth of the same user and device (a fresh token) is answered
  // auth_ok; another identity on an open session is not.
  auto again = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "phone"}});
  CHECK(again["t"] == "auth_ok");
  auto other = c->request({{"t", "auth"}, {"user", "bob"}, {"device", "phone"}});
  CHECK(other["code"] == "bad_frame");
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

TEST_CASE("jwt: --jwt-max-ttl caps exp; a session closes with 4005 when its token expires") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--auth=jwt", "--jwt-secret=s3cret", "--jwt-max-ttl=600"});
  auto now = imengine::now_ms() / 1000;
  auto auth = [&](imengine::net::ws_client& c, int64_t exp) {
    return c.request({{"t", "auth"}, {"user", "alice"}, {"device", "d"},
                      {"token", imengine::make_jwt("alice", exp, "s3cret")}});
  };
  auto c = engine.connect();
  auto refused = auth(*c, now + 3600);
  CHECK(refused["code"] == "unauthorized");
  CHECK(refused["msg"].get<std::string>().find("--jwt-max-ttl") != std::string::npos);
  // Two sessions whose tokens expire in 2 s: one re-auths with a fresh
  // token on the same connection (auth_ok), and outlives the other.
  auto renewed = engine.connect();
  auto expiring = engine.connect();
  REQUIRE(auth(*renewed, now + 2)["t"] == "auth_ok");
  REQUIRE(expiring->request({{"t", "auth"}, {"user", "alice"}, {"device", "e"},
                             {"token", imengine::make_jwt("alice", now + 2, "s3cret")}})["t"]
          == "auth_ok");
  REQUIRE(auth(*renewed, now + 300)["t"] == "auth_ok");
  REQUIRE(expiring->wait_closed(10000ms));
  CHECK(expiring->close_code() == 4005);
  CHECK(renewed->request({{"t", "ping"}})["t"] == "pong");
  // a re-auth with a token for someone else is refused, the session kept
  auto other = renewed->request({{"t", "auth"}, {"user", "bob"}, {"device", "d"},
                                 {"token", imengine::make_jwt("bob", now + 300, "s3cret")}});
  CHECK(other["code"] == "bad_frame");
  CHECK(renewed->request({{"t", "ping"}})["t"] == "pong");
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
  CHECK(metrics.find("imengine_connections_open 1") != std::string::npos);
  CHECK(metrics.find("imengine_commit_batch_size_count") != std::string::npos);
  CHECK(metrics.find("imengine_commit_seconds_bucket") != std::string::npos);
  CAPTURE(metrics);
  for (auto line : {"imengine_frames_in_total{type=\"auth\"} 1",
                    "imengine_frames_in_total{type=\"send\"} 1",
                    "imengine_frames_in_total{type=\"other\"} 0",
                    "imengine_frames_out_total{type=\"auth_ok\"} 1",
                    "imengine_frames_out_total{type=\"ack\"} 1",
                    "imengine_ack_seconds_count 1", "imengine_conversation_actors 1",
                    "imengine_build_info{version="})
    CHECK(metrics.find(line) != std::string::npos);
  // Figures that must be positive once a message went through.
  auto value = [&](const std::string& name) { return metric(metrics, name).value_or(0); };
  for (auto name : {"imengine_bytes_in_total", "imengine_bytes_out_total",
                    "imengine_lmdb_used_bytes", "imengine_lmdb_map_bytes",
                    "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                    "process_start_time_seconds"}) {
    CAPTURE(name);
    CHECK(value(name) > 0);
  }
  CHECK(value("imengine_lmdb_used_bytes") <= value("imengine_lmdb_map_bytes"));
  // The inbox copies follow the ack; then the writer's queue is empty.
  CHECK(metric(metrics, "imengine_storage_queue").has_value());
  CHECK(wait_metric(engine.port(), "imengine_storage_queue 0"));
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

TEST_CASE("--rate-msgs: over the bucket a send is rate_limited, nothing stored, session kept") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--rate-msgs=1", "--rate-burst=3"});
  auto alice = engine.login("alice", "phone");
  // 30 pipelined sends: at most the burst plus one per second pass; the
  // refusals do not count as bad frames (20 in a row would close 1008).
  const int n = 30;
  for (int i = 0; i < n; ++i) {
    auto f = send_frame("dm:alice:bob", "c" + std::to_string(i), "m");
    f["req"] = i + 1;
    alice->send(f);
  }
  int acked = 0, limited = 0;
  for (int i = 0; i < n; ++i) {
    auto r = alice->wait_for([](const json& f) { return f.contains("req"); });
    if (r["t"] == "ack")
      ++acked;
    else if (r["code"] == "rate_limited")
      ++limited;
  }
  CHECK(acked + limited == n);
  CHECK(acked >= 3);
  CHECK(limited > 0);
  CHECK(whole_history(*alice, "dm:alice:bob").size() == static_cast<size_t>(acked));
  CHECK(alice->request({{"t", "ping"}})["t"] == "pong");
  // a batch larger than the burst never fits
  json batch = {{"t", "send_batch"}, {"conv", "dm:alice:bob"}, {"msgs", json::array()}};
  for (int i = 0; i < 4; ++i)
    batch["msgs"].push_back({{"cmid", "b" + std::to_string(i)}, {"body", "x"}});
  CHECK(alice->request(batch)["code"] == "rate_limited");
  CHECK(wait_metric(engine.port(), "imengine_errors_total{code=\"rate_limited\"} "
                                     + std::to_string(limited + 1) + "\n"));
}

TEST_CASE("--max-user-conns: a new device beyond the cap is refused, a known one replaces") {
  temp_dir dir;
  engine_process engine(dir.str(), {"--max-user-conns=2"});
  auto a = engine.login("alice", "a");
  auto b = engine.login("alice", "b");
  auto c = engine.connect();
  auto refused = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "c"}});
  CHECK(refused["code"] == "rate_limited");
  auto again = engine.login("alice", "a");   // replaces a (4001)
  REQUIRE(a->wait_closed(5000ms));
  CHECK(a->close_code() == 4001);
  CHECK(engine.login("bob", "a")->request({{"t", "ping"}})["t"] == "pong");
}
