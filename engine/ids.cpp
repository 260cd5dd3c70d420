#include "engine/ids.hpp"

#include <algorithm>
#include <chrono>

namespace imengine {

namespace {

constexpr size_t max_id_len = 64;

bool user_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || c == '_' || c == '.' || c == '@' || c == '-';
}

// Snowflake layout: | 41 bits ms since 2024-01-01 | 10 bits node | 12 bits counter |
constexpr int64_t mid_epoch_ms = 1704067200000;   // 2024-01-01T00:00:00Z
constexpr int counter_bits = 12;
constexpr int node_bits = 10;
constexpr int ts_shift = counter_bits + node_bits;
constexpr uint64_t counter_mask = (uint64_t{1} << counter_bits) - 1;
constexpr uint64_t node_mask = (uint64_t{1} << node_bits) - 1;
constexpr uint64_t ts_mask = (uint64_t{1} << 41) - 1;

} // namespace

bool valid_user(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_id_len && std::all_of(s.begin(), s.end(), user_char);
}

bool valid_cmid(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_id_len && std::all_of(s.begin(), s.end(), [](char c) {
           return c >= 0x21 && c <= 0x7e;
         });
}

std::optional<conv_id> parse_conv(std::string_view s) {
  auto starts = [&](std::string_view p) { return s.substr(0, p.size()) == p; };
  conv_id out;
  if (starts("dm:")) {
    // Users cannot contain ':', so exactly one more separator splits a and b.
    auto rest = s.substr(3);
    auto sep = rest.find(':');
    if (sep == std::string_view::npos)
      return std::nullopt;
    auto a = rest.substr(0, sep);
    auto b = rest.substr(sep + 1);
    if (!valid_user(a) || !valid_user(b) || !(a < b))
      return std::nullopt;
    out.kind = conv_kind::dm;
    out.a = std::string{a};
    out.b = std::string{b};
  } else if (starts("g:") || starts("r:")) {
    if (!valid_user(s.substr(2)))
      return std::nullopt;
    out.kind = s[0] == 'g' ? conv_kind::group : conv_kind::room;
  } else {
    return std::nullopt;
  }
  out.name = std::string{s};
  return out;
}

std::string dm_conv(std::string_view x, std::string_view y) {
  if (y < x)
    std::swap(x, y);
  std::string out;
  out.reserve(4 + x.size() + y.size());
  out.append("dm:").append(x).append(":").append(y);
  return out;
}

int64_t now_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

mid_generator::mid_generator(uint16_t node_number) : node_(node_number & node_mask) {
  // nop
}

uint64_t mid_generator::next() noexcept {
  const uint64_t node_part = uint64_t{node_} << counter_bits;
  auto prev = last_.load(std::memory_order_relaxed);
  for (;;) {
    auto elapsed = std::max<int64_t>(now_ms() - mid_epoch_ms, 0);
    auto fresh = ((static_cast<uint64_t>(elapsed) & ts_mask) << ts_shift) | node_part;
    // The successor of the last id: next counter value, or, when the counter
    // is exhausted, counter 0 of the next (logical) millisecond. Taking the
    // max with the clock keeps ids increasing when the clock goes back or a
    // millisecond holds more than 4096 ids.
    auto succ = (prev & counter_mask) == counter_mask
                  ? ((((prev >> ts_shift) + 1) & ts_mask) << ts_shift) | node_part
                  : prev + 1;
    auto id = std::max(fresh, succ);
    if (last_.compare_exchange_weak(prev, id, std::memory_order_relaxed))
      return id;
    // prev now holds the value another thread stored: retry from it.
  }
}

uint16_t node_number(std::string_view node_name) noexcept {
  // FNV-1a: stable across runs, platforms and compilers (std::hash is not).
  uint32_t h = 2166136261u;
  for (unsigned char c : node_name) {
    h ^= c;
    h *= 16777619u;
  }
  return static_cast<uint16_t>(h & node_mask);
}

} // namespace imengine
