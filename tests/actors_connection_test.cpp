// The connection actor driven directly, with a real LMDB store and a
// recording frame_sink in place of the WebSocket. Actor level on purpose:
// what a connection hands its sink after it decided to close never reaches
// the wire (the session drops frames queued behind a close), so only a sink
// that records every call can tell whether the actor stopped.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/temp_dir.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>

#include "actors/connection.hpp"
#include "actors/messages.hpp"
#include "actors/node_actors.hpp"

using namespace imengine;
using imengine::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

// Every send and close, in call order.
class recording_sink : public frame_sink {
public:
  struct call {
    bool is_close = false;
    uint16_t code = 0;   // close only
    std::string data;    // send only
  };

  void send(frame_bytes data, bool) override { record({false, 0, *data}); }
  void close(uint16_t code, std::string) override { record({true, code, {}}); }
  size_t backlog() const override { return 0; }

  // Waits (deadline) until some call satisfies `pred`.
  bool wait_for(const std::function<bool(const call&)>& pred) {
    std::unique_lock<std::mutex> lock(mtx_);
    return cv_.wait_for(lock, 10s, [&] {
      for (const auto& c : calls_)
        if (pred(c))
          return true;
      return false;
    });
  }

  std::vector<call> calls() const {
    std::lock_guard<std::mutex> lock(mtx_);
    return calls_;
  }

private:
  void record(call c) {
    std::lock_guard<std::mutex> lock(mtx_);
    calls_.push_back(std::move(c));
    cv_.notify_all();
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<call> calls_;
};

// A node without network, with fault injection on.
struct fixture {
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<node_actors> node;
  caf::actor_system* sys = nullptr;
  node_context* ctx = nullptr;

  explicit fixture(uint32_t send_timeout_ms = 30000) {
    engine_config c;
    c.send_timeout_ms = send_timeout_ms;
    c.data = dir.path.string();
    c.sync = "none";
    c.map_size_mb = 64;
    c.fault_injection = true;
    node = std::make_unique<node_actors>(cfg, c);
    sys = &node->system();
    ctx = &node->context();
  }
};

void frame(const connection_actor& conn, const std::string& text) {
  caf::anon_send(conn, frame_atom::value, text, false);
}

} // namespace

TEST_CASE("a connection whose inbox does not take it back closes with 1011 and sends nothing after") {
  fixture f;
  auto sink = std::make_shared<recording_sink>();
  auto conn = f.sys->spawn(connection_fun, f.ctx, std::shared_ptr<frame_sink>(sink));
  frame(conn, R"({"t":"auth","req":1,"user":"bob","device":"phone"})");
  REQUIRE(sink->wait_for([](auto& c) { return c.data.find("auth_ok") != std::string::npos; }));
  // bob's inbox actor crashes; its successor refuses the re-register, so
  // the connection's reattach takes its error branch.
  f.ctx->refuse_next_register = true;
  caf::anon_send_exit(f.node->dir().user("bob"), caf::exit_reason::kill);
  REQUIRE(sink->wait_for([](auto& c) { return c.is_close; }));
  // Then a frame from the client and a push reach the actor, and the
  // session reports the close done; once the actor is down, all three
  // were handled (one sender, mailbox order).
  caf::scoped_actor self{*f.sys};
  self->monitor(conn);
  frame(conn, R"({"t":"ping","req":2})");
  message m;
  m.conv = "dm:alice:bob";
  m.seq = 1;
  m.mid = 7;
  m.from = "alice";
  m.body = "late";
  caf::anon_send(conn, push_atom::value, uint64_t{1}, m);
  caf::anon_send(conn, closed_atom::value);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(10s) >> [] {});
  REQUIRE(down);
  auto calls = sink->calls();
  size_t first_close = 0;
  while (!calls[first_close].is_close)
    ++first_close;
  CHECK(calls[first_close].code == 1011);
  for (size_t i = first_close + 1; i < calls.size(); ++i)
    FAIL_CHECK("after the 1011 close: " << (calls[i].is_close ? "close " + std::to_string(calls[i].code)
                                                               : "send " + calls[i].data));
}

TEST_CASE("a send its conversation never answers gets unavailable at the deadline; the next works") {
  fixture f(300);
  auto sink = std::make_shared<recording_sink>();
  auto conn = f.sys->spawn(connection_fun, f.ctx, std::shared_ptr<frame_sink>(sink));
  frame(conn, R"({"t":"auth","req":1,"user":"alice","device":"phone"})");
  REQUIRE(sink->wait_for([](auto& c) { return c.data.find("auth_ok") != std::string::npos; }));
  auto answer_to = [&](int req) {
    return [req](const recording_sink::call& c) {
      return c.data.find("\"req\":" + std::to_string(req) + ",") != std::string::npos
             || c.data.find("\"req\":" + std::to_string(req) + "}") != std::string::npos;
    };
  };
  f.ctx->stall_next_send = true;
  frame(conn, R"({"t":"send","req":2,"conv":"dm:alice:bob","cmid":"c1","body":"lost"})");
  REQUIRE(sink->wait_for(answer_to(2)));
  // Then the same cmid again and a new one: both stored and acked, once.
  frame(conn, R"({"t":"send","req":3,"conv":"dm:alice:bob","cmid":"c1","body":"again"})");
  frame(conn, R"({"t":"send","req":4,"conv":"dm:alice:bob","cmid":"c2","body":"next"})");
  REQUIRE(sink->wait_for(answer_to(4)));
  std::string first, again, next;
  for (const auto& c : sink->calls()) {
    if (answer_to(2)(c))
      first = c.data;
    if (answer_to(3)(c))
      again = c.data;
    if (answer_to(4)(c))
      next = c.data;
  }
  CAPTURE(first);
  CAPTURE(again);
  CAPTURE(next);
  CHECK(first.find("\"t\":\"error\"") != std::string::npos);
  CHECK(first.find("\"code\":\"unavailable\"") != std::string::npos);
  CHECK(again.find("\"t\":\"ack\"") != std::string::npos);
  CHECK(again.find("\"seq\":1") != std::string::npos);
  CHECK(next.find("\"seq\":2") != std::string::npos);
  // One answer per request: the late half of nothing arrives later.
  size_t answers = 0;
  for (const auto& c : sink->calls())
    answers += answer_to(2)(c) ? 1 : 0;
  CHECK(answers == 1);
}
