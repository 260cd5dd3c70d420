#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace imengine {

// One encoded frame, shareable so that a fan-out encodes once and queues the
// same bytes on many connections.
using frame_bytes = std::shared_ptr<const std::string>;

// The outbound half of a client connection, as the actors see it. net/
// implements it over a Beast WebSocket session; actors/ never includes Beast.
// All members are safe to call from any thread and never block.
class frame_sink {
public:
  virtual ~frame_sink() = default;

  // Queues one frame (text when !binary). Frames are written in call order.
  virtual void send(frame_bytes data, bool binary) = 0;

  // Writes what is queued, then closes with this WebSocket close code.
  virtual void close(uint16_t code, std::string reason) = 0;

  // Frames queued and not yet written.
  virtual size_t backlog() const = 0;
};

} // namespace imengine
