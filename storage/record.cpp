#include "storage/record.hpp"

#include <msgpack.hpp>

namespace imengine::storage {

namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

std::string to_string(const msgpack::sbuffer& buf) {
  return std::string(buf.data(), buf.size());
}

// Unpacks `bytes` as an array of at least `min_size` elements and hands the
// elements to `f`; nullopt on any malformed input.
template <class T, class F>
std::optional<T> unpack_array(std::string_view bytes, uint32_t min_size, F f) {
  try {
    // No container or string may claim more elements than there are bytes:
    // msgpack-c allocates what a header claims before reading it, so a
    // damaged 30-byte value asked for gigabytes (found by fuzz_record).
    auto n = bytes.size();
    msgpack::unpack_limit limit(n, n, n, n, n, 8);
    auto handle = msgpack::unpack(bytes.data(), n, nullptr, nullptr, limit);
    const auto& obj = handle.get();
    if (obj.type != msgpack::type::ARRAY || obj.via.array.size < min_size)
      return std::nullopt;
    T out;
    f(obj.via.array.ptr, obj.via.array.size, out);
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

} // namespace

std::string encode(const message& m) {
  msgpack::sbuffer buf(64 + m.body.size() + m.ex.size());
  packer pk(buf);
  // The amendments and mentions are appended only when present: most
  // messages have none and keep the 11 fields of earlier versions.
  auto extended = !m.mentions.empty() || m.recalled_by != 0 || m.edited != 0 || !m.edits.empty();
  pk.pack_array(extended ? 15 : 11);
  pk.pack(m.conv).pack(m.seq).pack(m.mid).pack(m.from).pack(m.device)
    .pack(m.cmid).pack(m.type).pack(m.body).pack(m.ex).pack(m.ts)
    .pack(static_cast<unsigned>(m.prio));
  if (extended)
    pk.pack(m.mentions).pack(m.recalled_by).pack(m.edited).pack(m.edits);
  return to_string(buf);
}

std::optional<message> decode_message(std::string_view bytes) {
  return unpack_array<message>(bytes, 11, [](const msgpack::object* a, uint32_t n, message& m) {
    a[0].convert(m.conv);
    a[1].convert(m.seq);
    a[2].convert(m.mid);
    a[3].convert(m.from);
    a[4].convert(m.device);
    a[5].convert(m.cmid);
    a[6].convert(m.type);
    a[7].convert(m.body);
    a[8].convert(m.ex);
    a[9].convert(m.ts);
    unsigned prio = 0;
    a[10].convert(prio);
    m.prio = static_cast<uint8_t>(prio);
    if (n >= 15) {
      a[11].convert(m.mentions);
      a[12].convert(m.recalled_by);
      a[13].convert(m.edited);
      a[14].convert(m.edits);
    }
  });
}

std::string encode(const conv_meta& m) {
  msgpack::sbuffer buf;
  packer pk(buf);
  pk.pack_array(5);
  pk.pack(static_cast<unsigned>(m.kind)).pack(m.last_seq).pack(m.fanout_seq).pack(m.created_ms)
    .pack(m.last_ts);
  return to_string(buf);
}

std::optional<conv_meta> decode_conv_meta(std::string_view bytes) {
  return unpack_array<conv_meta>(bytes, 4, [](const msgpack::object* a, uint32_t n, conv_meta& m) {
    unsigned kind = 0;
    a[0].convert(kind);
    m.kind = static_cast<uint8_t>(kind);
    a[1].convert(m.last_seq);
    a[2].convert(m.fanout_seq);
    a[3].convert(m.created_ms);
    if (n > 4)
      a[4].convert(m.last_ts);
  });
}

std::string encode(const user_conv& m) {
  msgpack::sbuffer buf;
  packer pk(buf);
  pk.pack_array(4);
  pk.pack(m.read_seq).pack(m.delivered_seq).pack(m.left_seq).pack(m.muted);
  return to_string(buf);
}

std::optional<user_conv> decode_user_conv(std::string_view bytes) {
  return unpack_array<user_conv>(bytes, 2, [](const msgpack::object* a, uint32_t n, user_conv& m) {
    a[0].convert(m.read_seq);
    a[1].convert(m.delivered_seq);
    if (n > 2)
      a[2].convert(m.left_seq);
    if (n > 3)
      a[3].convert(m.muted);
  });
}

std::string encode(const user_meta& m) {
  msgpack::sbuffer buf;
  packer pk(buf);
  pk.pack_array(2);
  pk.pack(m.last_iseq).pack(m.acked);
  return to_string(buf);
}

std::optional<user_meta> decode_user_meta(std::string_view bytes) {
  return unpack_array<user_meta>(bytes, 2, [](const msgpack::object* a, uint32_t, user_meta& m) {
    a[0].convert(m.last_iseq);
    a[1].convert(m.acked);
  });
}

std::string encode(const dedupe_entry& m) {
  msgpack::sbuffer buf;
  packer pk(buf);
  pk.pack_array(5);
  pk.pack(m.conv).pack(m.seq).pack(m.mid).pack(m.ts).pack(m.expires_s);
  return to_string(buf);
}

std::optional<dedupe_entry> decode_dedupe(std::string_view bytes) {
  return unpack_array<dedupe_entry>(bytes, 5, [](const msgpack::object* a, uint32_t, dedupe_entry& m) {
    a[0].convert(m.conv);
    a[1].convert(m.seq);
    a[2].convert(m.mid);
    a[3].convert(m.ts);
    a[4].convert(m.expires_s);
  });
}

} // namespace imengine::storage
