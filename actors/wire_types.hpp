#pragma once

// Every type that crosses a node boundary inside a message, named once.
// CAF 0.17 fails silently at run time on an unregistered type (it arrives
// empty or "cannot serialize"), so registration (add_message_types) and the
// serialization round-trip test (tests/actors_wire_types_test.cpp) both
// walk this one list: a type added here is registered and tested.

#include <string>
#include <utility>
#include <vector>

#include "actors/messages.hpp"

namespace imengine {

template <class T>
struct type_tag {
  using type = T;
};

// Calls f(type_tag<T>{}, "name") for every wire type, in a fixed order.
template <class F>
void for_each_wire_type(F&& f) {
  f(type_tag<message>{}, "imengine::message");
  f(type_tag<send_item>{}, "imengine::send_item");
  f(type_tag<std::vector<send_item>>{}, "std::vector<imengine::send_item>");
  f(type_tag<send_ack>{}, "imengine::send_ack");
  f(type_tag<unread_entry>{}, "imengine::unread_entry");
  f(type_tag<std::vector<unread_entry>>{}, "std::vector<imengine::unread_entry>");
  f(type_tag<inbox_page>{}, "imengine::inbox_page");
  f(type_tag<history_query>{}, "imengine::history_query");
  f(type_tag<message_page>{}, "imengine::message_page");
  f(type_tag<group_info>{}, "imengine::group_info");
  f(type_tag<list_position>{}, "imengine::list_position");
  f(type_tag<conv_summary>{}, "imengine::conv_summary");
  f(type_tag<std::vector<conv_summary>>{}, "std::vector<imengine::conv_summary>");
  f(type_tag<convs_query>{}, "imengine::convs_query");
  f(type_tag<conv_page>{}, "imengine::conv_page");
  f(type_tag<group_op>{}, "imengine::group_op");
  f(type_tag<amend_op>{}, "imengine::amend_op");
  f(type_tag<diffusion>{}, "imengine::diffusion");
  f(type_tag<connection_actor>{}, "imengine::connection_actor");
  f(type_tag<user_actor>{}, "imengine::user_actor");
  f(type_tag<conversation_actor>{}, "imengine::conversation_actor");
  f(type_tag<fanout_actor>{}, "imengine::fanout_actor");
  f(type_tag<reader_actor>{}, "imengine::reader_actor");
  f(type_tag<node_hello>{}, "imengine::node_hello");
  f(type_tag<directory_actor>{}, "imengine::directory_actor");
}

} // namespace imengine
