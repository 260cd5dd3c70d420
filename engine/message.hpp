#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace imengine {

// One committed chat message: what the timeline stores and what a `msg`
// frame carries.
struct message {
  std::string conv;
  uint64_t seq = 0;
  uint64_t mid = 0;     // snowflake id; a decimal string on the wire
  std::string from;     // sending user
  std::string device;   // sending device
  std::string cmid;     // client message id (dedupe key with `from`)
  std::string type = "text";
  std::string body;
  std::string ex;       // extension object as JSON text; empty means {}
  int64_t ts = 0;       // commit time, ms since the Unix epoch
  uint8_t prio = 0;     // 0 normal, 1 high
  std::vector<std::string> mentions;   // members named, or just "@all"
  uint64_t recalled_by = 0;   // the seq of the recall that erased it (0: none)
  int64_t edited = 0;         // ts of its last edit (0: never edited)
  std::vector<uint64_t> edits;   // seqs of its edits, which a recall erases too (not on the wire)
};

inline bool operator==(const message& a, const message& b) {
  return a.conv == b.conv && a.seq == b.seq && a.mid == b.mid && a.from == b.from
         && a.device == b.device && a.cmid == b.cmid && a.type == b.type
         && a.body == b.body && a.ex == b.ex && a.ts == b.ts && a.prio == b.prio
         && a.mentions == b.mentions && a.recalled_by == b.recalled_by && a.edited == b.edited && a.edits == b.edits;
}

} // namespace imengine
