#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imengine {

// user and device: 1-64 chars of [A-Za-z0-9_.@-]
bool valid_user(std::string_view s) noexcept;
inline bool valid_device(std::string_view s) noexcept { return valid_user(s); }

// cmid: 1-64 printable ASCII chars (0x21-0x7e)
bool valid_cmid(std::string_view s) noexcept;

enum class conv_kind : uint8_t { dm, group, room };

// A parsed conversation id: `dm:<a>:<b>` (a < b bytewise, both valid users),
// `g:<id>` or `r:<id>` (id: 1-64 chars of the user charset).
struct conv_id {
  conv_kind kind = conv_kind::dm;
  std::string name;   // the whole id, e.g. "dm:alice:bob"
  std::string a, b;   // dm only: the two users
};

std::optional<conv_id> parse_conv(std::string_view s);

// The dm id of two distinct users, ordered.
std::string dm_conv(std::string_view x, std::string_view y);

// Milliseconds since the Unix epoch.
int64_t now_ms() noexcept;

// Snowflake-style 64-bit ids: 41 bits of ms since 2024-01-01, 10 bits of
// node number, 12 bits of counter. Thread-safe; never returns the same id
// twice in one process, and ids only grow (a clock step back waits it out
// by borrowing from the last timestamp).
class mid_generator {
public:
  explicit mid_generator(uint16_t node_number);
  uint64_t next() noexcept;

private:
  uint16_t node_;
  std::atomic<uint64_t> last_{0};
};

// Maps a node name to its 10-bit number (stable hash).
uint16_t node_number(std::string_view node_name) noexcept;

} // namespace imengine
