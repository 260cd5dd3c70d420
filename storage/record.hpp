#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "engine/message.hpp"

// The values stored in LMDB, encoded as msgpack arrays (compact, versionable
// by appending fields). A decode of a damaged record returns nullopt.
namespace imengine::storage {

// convs: conv -> meta
struct conv_meta {
  uint8_t kind = 0;          // engine conv_kind
  uint64_t last_seq = 0;     // last committed seq
  uint64_t fanout_seq = 0;   // every seq <= this is in every member's inbox
  int64_t created_ms = 0;
  int64_t last_ts = 0;       // ts of the last committed message (its activity)
};

// user_convs: user \0 conv -> positions
struct user_conv {
  uint64_t read_seq = 0;
  uint64_t delivered_seq = 0;   // highest seq copied into the user's inbox
  uint64_t left_seq = 0;        // g: groups: the seq that removed the user (0: member)
  bool muted = false;           // the user muted the conversation
};

// users: user -> inbox head and per-device acked positions
struct user_meta {
  uint64_t last_iseq = 0;
  std::map<std::string, uint64_t> acked;   // device -> acked iseq
};

// dedupe: user \0 cmid -> the original ack
struct dedupe_entry {
  std::string conv;
  uint64_t seq = 0;
  uint64_t mid = 0;
  int64_t ts = 0;
  int64_t expires_s = 0;
};

std::string encode(const message& m);
std::string encode(const conv_meta& m);
std::string encode(const user_conv& m);
std::string encode(const user_meta& m);
std::string encode(const dedupe_entry& m);

std::optional<message> decode_message(std::string_view bytes);
std::optional<conv_meta> decode_conv_meta(std::string_view bytes);
std::optional<user_conv> decode_user_conv(std::string_view bytes);
std::optional<user_meta> decode_user_meta(std::string_view bytes);
std::optional<dedupe_entry> decode_dedupe(std::string_view bytes);

} // namespace imengine::storage
