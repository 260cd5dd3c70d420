#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/frame.hpp"

// Direct encoders for the frames the engine sends most: every `msg` push
// and every `ack`. They write the bytes in one pass, with no JSON object
// in between (building and destroying that tree was a fifth of the
// engine's instructions per message). Their output is byte-identical to
// what encode_frame makes of the same object (msg_frame for `msg`): keys in the
// same (sorted) order, any string that needs escaping escaped by nlohmann, msgpack
// integers and strings in the same smallest formats.
namespace imengine {

std::string encode_msg(const message& m, std::optional<uint64_t> iseq, encoding enc);

std::string encode_ack(req_id req, std::string_view cmid, std::string_view conv, uint64_t seq,
                       uint64_t mid, int64_t ts, bool dup, encoding enc);

} // namespace imengine
