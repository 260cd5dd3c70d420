// Bad input of every kind gets the documented error, loses nothing, and
// never disturbs the session or another client.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

std::string error_code_of(imengine::net::ws_client& c) {
  auto f = c.wait_for(is_type("error"));
  return f.value("code", "");
}

} // namespace

TEST_CASE("each kind of bad frame gets its error and the session keeps working") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");

  struct bad { std::string what; std::string text; std::string code; };
  std::vector<bad> cases{
    {"not json", "{{{", "bad_frame"},
    {"not an object", "[1,2,3]", "bad_frame"},
    {"scalar", "42", "bad_frame"},
    {"no t", R"({"req":1})", "bad_frame"},
    {"t not a string", R"({"t":5})", "bad_frame"},
    {"req not an integer", R"({"t":"ping","req":"x"})", "bad_frame"},
    {"unknown type", R"({"t":"teleport","req":2})", "unknown_type"},
    {"body wrong type", R"({"t":"send","conv":"dm:alice:bob","cmid":"c","body":5})", "bad_frame"},
    {"missing cmid", R"({"t":"send","conv":"dm:alice:bob","body":"x"})", "bad_frame"},
    {"missing conv", R"({"t":"send","cmid":"c","body":"x"})", "bad_frame"},
    {"dm users out of order", R"({"t":"send","conv":"dm:bob:alice","cmid":"c","body":"x"})", "bad_frame"},
    {"unknown conv kind", R"({"t":"send","conv":"x:y","cmid":"c","body":"x"})", "bad_frame"},
    {"cmid with a space", R"({"t":"send","conv":"dm:alice:bob","cmid":"a b","body":"x"})", "bad_frame"},
    {"cmid too long", R"({"t":"send","conv":"dm:alice:bob","cmid":")" + std::string(65, 'c') + R"(","body":"x"})", "bad_frame"},
    {"ex not an object", R"({"t":"send","conv":"dm:alice:bob","cmid":"c","body":"x","ex":[1]})", "bad_frame"},
    {"prio out of range", R"({"t":"send","conv":"dm:alice:bob","cmid":"c","body":"x","prio":7})", "bad_frame"},
    {"negative iseq", R"({"t":"ack","iseq":-1})", "bad_frame"},
    {"float seq", R"({"t":"sync","after":1.5})", "bad_frame"},
    {"history both directions", R"({"t":"history","conv":"dm:alice:bob","after":1,"before":5})", "bad_frame"},
    {"empty batch", R"({"t":"send_batch","conv":"dm:alice:bob","msgs":[]})", "bad_frame"},
    {"batch with repeated cmid", R"({"t":"send_batch","conv":"dm:alice:bob","msgs":[{"cmid":"a","body":"1"},{"cmid":"a","body":"2"}]})", "bad_frame"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    alice->send_text(c.text);
    CHECK(error_code_of(*alice) == c.code);
    // the session answers the next good frame (which also ends the
    // bad-frame streak, so the 1008 rule does not fire here)
    CHECK(alice->request({{"t", "ping"}})["t"] == "pong");
  }
  alice->send_binary(std::string("\xc1\xff\x00garbage", 10));
  CHECK(error_code_of(*alice) == "bad_frame");
  alice->send_text(R"({"t":"send","conv":"dm:alice:bob","cmid":"big","body":")"
                   + std::string(70000, 'x') + "\"}");
  CHECK(error_code_of(*alice) == "too_large");

  // nothing was created, and both sessions still work
  auto ack = alice->request(send_frame("dm:alice:bob", "good", "fine"));
  CHECK(ack["seq"] == 1);
  CHECK(bob->wait_for(is_push(1))["body"] == "fine");
}

TEST_CASE("20 bad frames in a row close with 1008; a good frame resets the count") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto bystander = engine.login("carol", "phone");
  auto c = engine.login("mallory", "x");
  for (int i = 0; i < 19; ++i)
    c->send_text("nope");
  CHECK(c->request({{"t", "ping"}})["t"] == "pong");
  for (int i = 0; i < 19; ++i)
    c->send_text("nope");
  CHECK(c->request({{"t", "ping"}})["t"] == "pong");   // 19, then good: still open
  for (int i = 0; i < 20; ++i)
    c->send_text("nope");
  REQUIRE(c->wait_closed(5000ms));
  CHECK(c->close_code() == 1008);
  CHECK(bystander->request({{"t", "ping"}})["t"] == "pong");
}

TEST_CASE("random bytes never crash the engine or disturb another client") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  std::mt19937 rng(12345);
  for (int round = 0; round < 20; ++round) {
    auto fuzz = engine.connect();
    for (int i = 0; i < 15; ++i) {
      std::string junk(rng() % 300, '\0');
      for (auto& ch : junk)
        ch = static_cast<char>(rng() % 256);
      if (rng() % 2)
        fuzz->send_binary(junk);
      else
        fuzz->send_text(R"({"t":"auth","user":")" + junk + "\"}");
    }
  }
  CHECK(engine.running());
  auto ack = alice->request(send_frame("dm:alice:bob", "after-fuzz", "still here"));
  CHECK(ack["t"] == "ack");
}
