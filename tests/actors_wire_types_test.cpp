// Everything that crosses a node survives CAF's binary serializer: every
// type of the one registration list (actors/wire_types.hpp) with
// non-default values, and every message of every interface whose
// messages may cross a node, built from its signature. A type that an
// interface uses but the list misses fails here, not silently between
// two nodes at run time.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <type_traits>

#include "actors/messages.hpp"
#include "actors/wire_types.hpp"

using namespace imengine;

namespace imengine {

// Field by field, written apart from `inspect` so that a field it misses
// shows up as a difference.
bool operator==(const send_item& a, const send_item& b) {
  return a.cmid == b.cmid && a.type == b.type && a.body == b.body && a.ex == b.ex
         && a.prio == b.prio;
}
bool operator==(const send_ack& a, const send_ack& b) {
  return a.conv == b.conv && a.first_seq == b.first_seq && a.last_seq == b.last_seq
         && a.mids == b.mids && a.ts == b.ts && a.dup == b.dup;
}
bool operator==(const unread_entry& a, const unread_entry& b) {
  return a.conv == b.conv && a.last_seq == b.last_seq && a.read_seq == b.read_seq;
}
bool operator==(const inbox_page& a, const inbox_page& b) {
  return a.items == b.items && a.more == b.more;
}
bool operator==(const history_query& a, const history_query& b) {
  return a.conv == b.conv && a.after == b.after && a.before == b.before
         && a.descending == b.descending && a.limit == b.limit;
}
bool operator==(const message_page& a, const message_page& b) {
  return a.items == b.items && a.more == b.more;
}
bool operator==(const node_hello& a, const node_hello& b) {
  return a.node == b.node && a.fanout == b.fanout && a.reader == b.reader;
}
bool operator==(const group_info& a, const group_info& b) {
  return a.members == b.members && a.owner == b.owner && a.mode == b.mode
         && a.last_seq == b.last_seq;
}

bool operator==(const list_position& a, const list_position& b) {
  return a.ts == b.ts && a.conv == b.conv;
}
bool operator==(const conv_summary& a, const conv_summary& b) {
  return a.at == b.at && a.last_seq == b.last_seq && a.read_seq == b.read_seq
         && a.mentions == b.mentions && a.muted == b.muted && a.last == b.last;
}
bool operator==(const convs_query& a, const convs_query& b) {
  return a.from_top == b.from_top && a.after == b.after && a.limit == b.limit;
}
bool operator==(const conv_page& a, const conv_page& b) {
  return a.rows == b.rows && a.more == b.more;
}

} // namespace imengine

namespace {

struct config : caf::actor_system_config {
  config() { imengine::add_message_types(*this); }
};

struct fixture {
  config cfg;
  caf::actor_system sys{cfg};
  // Any live actor: typed handles are cast from it to test their wire form.
  // It takes an argument: for a function actor without any, CAF 0.17's
  // init_fun_factory binds a reference to a null tuple (UBSan reports it);
  // the engine's actors all take some.
  caf::actor some = sys.spawn([](int) -> caf::behavior { return {[](int) {}}; }, 0);
  ~fixture() { caf::anon_send_exit(some, caf::exit_reason::user_shutdown); }

  template <class T>
  T round_trip(T x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    if (auto err = sink(x))
      FAIL("serialize: " << sys.render(err));
    T y{};
    caf::binary_deserializer source{sys, buf};
    if (auto err = source(y))
      FAIL("deserialize: " << sys.render(err));
    return y;
  }
};

message sample_message() {
  message m;
  m.conv = "g:team";
  m.seq = 42;
  m.mid = 7301234567890123456ull;
  m.from = "alice";
  m.device = "phone";
  m.cmid = "c-1";
  m.type = "text";
  m.body = "h\xc3\xa9llo \"x\"";
  m.ex = R"({"k":1})";
  m.ts = 1763800000123;
  m.prio = 1;
  m.mentions = {"bob", "carol"};
  m.recalled_by = 44;
  m.edited = 1763800000200;
  m.edits = {43};
  return m;
}

send_item sample_item() {
  send_item i;
  i.cmid = "c-2";
  i.type = "image";
  i.body = "{}";
  i.ex = R"({"w":3})";
  i.prio = 1;
  i.mentions = {"@all"};
  return i;
}

// A non-default value of every wire type: a type added to the list
// without a sample here does not compile.
message sample(fixture&, type_tag<message>) { return sample_message(); }
send_item sample(fixture&, type_tag<send_item>) { return sample_item(); }
std::vector<send_item> sample(fixture&, type_tag<std::vector<send_item>>) {
  return {sample_item(), send_item{}};
}
send_ack sample(fixture&, type_tag<send_ack>) {
  return {"dm:a:b", 3, 5, {11, 12, 13}, 1763800000999, true};
}
unread_entry sample(fixture&, type_tag<unread_entry>) { return {"r:lobby", 900, 17}; }
std::vector<unread_entry> sample(fixture&, type_tag<std::vector<unread_entry>>) {
  return {{"r:lobby", 900, 17}, {"g:x", 2, 1}};
}
inbox_page sample(fixture&, type_tag<inbox_page>) {
  return {{{57, sample_message()}, {58, message{}}}, true};
}
history_query sample(fixture&, type_tag<history_query>) { return {"g:x", 4, 90, true, 20}; }
message_page sample(fixture&, type_tag<message_page>) { return {{sample_message()}, true}; }
group_info sample(fixture&, type_tag<group_info>) {
  return {{"alice", "bob"}, "alice", diffusion::timeline, 77};
}
list_position sample(fixture&, type_tag<list_position>) { return {1763800000999, "g:x"}; }
conv_summary sample_summary() { return {{1763800000123, "g:team"}, 42, 40, 2, true, sample_message()}; }
conv_summary sample(fixture&, type_tag<conv_summary>) { return sample_summary(); }
std::vector<conv_summary> sample(fixture&, type_tag<std::vector<conv_summary>>) {
  return {sample_summary(), conv_summary{}};
}
convs_query sample(fixture&, type_tag<convs_query>) { return {false, {17, "dm:a:b"}, 20}; }
conv_page sample(fixture&, type_tag<conv_page>) { return {{sample_summary()}, true}; }
group_op sample(fixture&, type_tag<group_op>) { return group_op::remove; }
amend_op sample(fixture&, type_tag<amend_op>) { return amend_op::edit; }
diffusion sample(fixture&, type_tag<diffusion>) { return diffusion::timeline; }
template <class Handle>
auto sample(fixture& f, type_tag<Handle>)
  -> std::enable_if_t<caf::is_typed_actor<Handle>::value, Handle>;
node_hello sample(fixture& f, type_tag<node_hello>) {
  return {"n2", sample(f, type_tag<fanout_actor>{}), sample(f, type_tag<reader_actor>{})};
}
template <class Handle>
auto sample(fixture& f, type_tag<Handle>)
  -> std::enable_if_t<caf::is_typed_actor<Handle>::value, Handle> {
  return caf::actor_cast<Handle>(f.some);
}

// Whether a message comes back whole. CAF 0.17 serializes a message with
// an unregistered element without an error (it logs one and writes a
// message that reads back different), so compare what comes back.
bool survives(caf::actor_system& sys, caf::message msg) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (sink(msg))
    return false;
  caf::message back;
  caf::binary_deserializer source{sys, buf};
  if (source(back))
    return false;
  return back.size() == msg.size() && caf::to_string(back) == caf::to_string(msg);
}

// Messages only ever sent within a node: they hold closures or sinks.
template <class T>
constexpr bool local_only = std::is_same<T, write_job>::value || std::is_same<T, local_conn>::value;

template <class... Ts>
void check_message(fixture& f, caf::detail::type_list<Ts...>) {
  if constexpr ((local_only<Ts> || ...)) {
    return;
  } else {
    CHECK(survives(f.sys, caf::make_message(Ts{}...)));
  }
}

template <class... Ins, class... Outs>
void check_signature(fixture& f, caf::typed_mpi<caf::detail::type_list<Ins...>,
                                                caf::output_tuple<Outs...>>) {
  check_message(f, caf::detail::type_list<Ins...>{});
  if constexpr (!(std::is_void<Outs>::value || ...))
    check_message(f, caf::detail::type_list<Outs...>{});
}

template <class... Sigs>
void check_interface(fixture& f, caf::detail::type_list<Sigs...>) {
  (check_signature(f, Sigs{}), ...);
}

} // namespace

TEST_CASE("every registered type survives the binary serializer with its values") {
  fixture f;
  size_t n = 0;
  for_each_wire_type([&](auto tag, const char* name) {
    CAPTURE(name);
    auto x = sample(f, tag);
    CHECK(f.round_trip(x) == x);
    CHECK_FALSE(x == typename decltype(tag)::type{});   // the sample is not the default
    ++n;
  });
  CHECK(n >= 10);
}

TEST_CASE("every message of every interface that crosses nodes serializes") {
  fixture f;
  check_interface(f, connection_actor::signatures{});
  check_interface(f, user_actor::signatures{});
  check_interface(f, conversation_actor::signatures{});
  check_interface(f, fanout_actor::signatures{});
  check_interface(f, reader_actor::signatures{});
  check_interface(f, directory_actor::signatures{});
}

TEST_CASE("the round trip would notice an unregistered type") {
  // The test above is only worth something if a missing registration
  // fails it: a system without the list cannot serialize a message of ours.
  caf::actor_system_config bare;
  caf::actor_system sys{bare};
  CHECK_FALSE(survives(sys, caf::make_message(deliver_atom::value, sample_message())));
  CHECK(survives(sys, caf::make_message(deliver_atom::value, std::string{"x"})));
}
