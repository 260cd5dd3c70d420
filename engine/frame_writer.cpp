#include "engine/frame_writer.hpp"

#include <msgpack.hpp>

namespace imengine {

namespace {

// Writes one flat object as JSON text. Keys must come in sorted order (the
// order nlohmann's std::map objects dump in) and be plain ASCII.
class json_writer {
public:
  explicit json_writer(size_t) {
    out_.reserve(256);
    out_ += '{';
  }
  void key(std::string_view k) {
    if (!first_)
      out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  void str(std::string_view s) {
    if (plain(s)) {
      out_ += '"';
      out_ += s;
      out_ += '"';
    } else {   // nlohmann escapes, and replaces bytes that are not UTF-8
      out_ += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  void uint(uint64_t v) { out_ += std::to_string(v); }
  void sint(int64_t v) { out_ += std::to_string(v); }
  void boolean(bool v) { out_ += v ? "true" : "false"; }
  void object(const json& v) { out_ += v.dump(-1, ' ', false, json::error_handler_t::replace); }
  void empty_object() { out_ += "{}"; }
  void strs(const std::vector<std::string>& v) {
    out_ += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0)
        out_ += ',';
      str(v[i]);
    }
    out_ += ']';
  }
  std::string finish() {
    out_ += '}';
    return std::move(out_);
  }

private:
  // Printable ASCII but '"' and '\\': written as is by any JSON writer.
  static bool plain(std::string_view s) {
    for (unsigned char c : s)
      if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
        return false;
    return true;
  }
  std::string out_;
  bool first_ = true;
};

// Appends msgpack bytes to a string (the stream concept msgpack::packer wants).
struct string_stream {
  std::string& out;
  void write(const char* data, size_t n) { out.append(data, n); }
};

// The same object as msgpack: msgpack-c picks the smallest integer and
// string formats, as nlohmann's to_msgpack does.
class msgpack_writer {
public:
  explicit msgpack_writer(size_t fields) : stream_{out_}, pk_(stream_) {
    out_.reserve(256);
    pk_.pack_map(static_cast<uint32_t>(fields));
  }
  void key(std::string_view k) { raw_str(k); }
  void str(std::string_view s) { raw_str(s); }
  void uint(uint64_t v) { pk_.pack_uint64(v); }
  void sint(int64_t v) { pk_.pack_int64(v); }
  void boolean(bool v) { v ? pk_.pack_true() : pk_.pack_false(); }
  void object(const json& v) { json::to_msgpack(v, nlohmann::detail::output_adapter<char>(out_)); }
  void empty_object() { pk_.pack_map(0); }
  void strs(const std::vector<std::string>& v) {
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (const auto& s : v)
      raw_str(s);
  }
  std::string finish() { return std::move(out_); }

private:
  void raw_str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
  }
  std::string out_;
  string_stream stream_;
  msgpack::packer<string_stream> pk_;
};

template <class W>
std::string write_msg(const message& m, std::optional<uint64_t> iseq) {
  W w(10 + (iseq ? 1 : 0) + (m.prio != 0 ? 1 : 0) + (m.edited != 0 ? 1 : 0)
      + (m.mentions.empty() ? 0 : 1) + (m.recalled_by != 0 ? 1 : 0));
  w.key("body");
  w.str(m.body);
  w.key("conv");
  w.str(m.conv);
  w.key("device");
  w.str(m.device);
  if (m.edited != 0) {
    w.key("edited");
    w.sint(m.edited);
  }
  w.key("ex");
  if (m.ex.empty())
    w.empty_object();   // the common case, without a parse
  else
    w.object(ex_object(m.ex));
  w.key("from");
  w.str(m.from);
  if (iseq) {
    w.key("iseq");
    w.uint(*iseq);
  }
  if (!m.mentions.empty()) {
    w.key("mentions");
    w.strs(m.mentions);
  }
  w.key("mid");
  w.str(std::to_string(m.mid));
  if (m.prio != 0) {
    w.key("prio");
    w.uint(m.prio);
  }
  if (m.recalled_by != 0) {
    w.key("recalled");
    w.boolean(true);
  }
  w.key("seq");
  w.uint(m.seq);
  w.key("t");
  w.str("msg");
  w.key("ts");
  w.sint(m.ts);
  w.key("type");
  w.str(m.type);
  return w.finish();
}

template <class W>
std::string write_ack(req_id req, std::string_view cmid, std::string_view conv, uint64_t seq,
                      uint64_t mid, int64_t ts, bool dup) {
  W w(6 + (dup ? 1 : 0) + (req ? 1 : 0));
  w.key("cmid");
  w.str(cmid);
  w.key("conv");
  w.str(conv);
  if (dup) {
    w.key("dup");
    w.boolean(true);
  }
  w.key("mid");
  w.str(std::to_string(mid));
  if (req) {
    w.key("req");
    w.sint(*req);
  }
  w.key("seq");
  w.uint(seq);
  w.key("t");
  w.str("ack");
  w.key("ts");
  w.sint(ts);
  return w.finish();
}

} // namespace

std::string encode_msg(const message& m, std::optional<uint64_t> iseq, encoding enc) {
  return enc == encoding::msgpack ? write_msg<msgpack_writer>(m, iseq)
                                  : write_msg<json_writer>(m, iseq);
}

std::string encode_ack(req_id req, std::string_view cmid, std::string_view conv, uint64_t seq,
                       uint64_t mid, int64_t ts, bool dup, encoding enc) {
  return enc == encoding::msgpack ? write_ack<msgpack_writer>(req, cmid, conv, seq, mid, ts, dup)
                                  : write_ack<json_writer>(req, cmid, conv, seq, mid, ts, dup);
}

} // namespace imengine
