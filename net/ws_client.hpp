#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace imengine::net {

// A small WebSocket client for tests, examples and benchmarks. Frames are
// read on a background thread into a queue; every member is safe to call
// from any thread. Text frames decode as JSON, binary frames as msgpack (a
// frame that does not decode arrives as a JSON string of its bytes).
class ws_client {
public:
  using json = nlohmann::json;
  using ms = std::chrono::milliseconds;

  // wss://: TLS 1.2 or later. With a CA file the server's chain must
  // verify against it (the host name is not checked); without, anything
  // is accepted (tests against a self-signed certificate).
  struct tls_options {
    std::string ca_file;
  };

  // Connects and completes the handshake (10 s at most each); throws
  // std::runtime_error, e.g. when the server declines the upgrade.
  ws_client(const std::string& host, uint16_t port, const std::string& path = "/ws");
  ws_client(const std::string& host, uint16_t port, const std::string& path,
            std::optional<tls_options> tls);
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  void send_text(std::string s);
  void send_binary(std::string s);
  void send(const json& frame);           // JSON text frame
  void send_msgpack(const json& frame);   // msgpack binary frame

  // The next frame, or nullopt on timeout or once closed and drained.
  std::optional<json> next(ms timeout);

  // The first queued or arriving frame that satisfies `pred`; frames it
  // passes over stay queued, in order. Throws std::runtime_error
  // ("timeout ..." or "closed ...") when none comes in time.
  json wait_for(const std::function<bool(const json&)>& pred, ms timeout = ms(5000));

  // Sends `frame` with a fresh integer "req" and waits for the reply
  // carrying it.
  json request(json frame, ms timeout = ms(5000));
  json request_msgpack(json frame, ms timeout = ms(5000));

  // Whether the frame last returned by next/wait_for/request was binary.
  bool last_was_binary() const;

  // True once the connection has closed (within `timeout`).
  bool wait_closed(ms timeout);
  // The code of the server's close frame, once one arrived (none when the
  // connection just dropped).
  std::optional<uint16_t> close_code() const;
  // WebSocket pings received from the server.
  size_t pings_received() const;

  // Stops reading for good: no more frames, no pongs to the server's
  // pings. Simulates a peer that went silent without closing.
  void freeze();

  // Stops reading after the frame being read (the server's frames pile up
  // in the kernel and then in its queue) until resume(). Slow-consumer tests.
  void pause();
  void resume();

  // Sends a close frame (1000) and waits up to 2 s for the server's answer.
  // The destructor, in contrast, just drops the TCP connection.
  void close();

private:
  json request_as(json frame, bool msgpack, ms timeout);

  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace imengine::net
