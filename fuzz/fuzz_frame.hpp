#pragma once

// The shared body of the two client-frame targets: whatever decodes must
// survive every typed parser, and re-encode to a frame that decodes to
// the same object.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/frame.hpp"

namespace imengine::fuzz {

inline void check_frame(const uint8_t* data, size_t size, encoding enc) {
  auto decoded = decode_frame(std::string_view(reinterpret_cast<const char*>(data), size), enc);
  if (!decoded)
    return;
  const json& f = *decoded;
  // Each parser refuses what it cannot take; none may crash or throw.
  (void)parse_auth(f), (void)parse_send(f), (void)parse_send_batch(f), (void)parse_ack(f);
  (void)parse_sync(f), (void)parse_history(f), (void)parse_read(f), (void)parse_conv_req(f);
  (void)parse_members(f), (void)parse_presence_sub(f), (void)parse_convs(f);
  (void)parse_mute(f), (void)parse_recall(f), (void)parse_edit(f);
  auto again = decode_frame(encode_frame(f, enc), enc);
  if (!again || *again != f)
    std::abort();   // the codec lost or changed something
}

} // namespace imengine::fuzz
