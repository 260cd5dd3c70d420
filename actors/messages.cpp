#include "actors/messages.hpp"

#include "actors/wire_types.hpp"

namespace imengine {

namespace {
const auto category = caf::atom("imengine");
} // namespace

caf::error make_error(errc code) {
  return caf::error(static_cast<uint8_t>(code), category);
}

caf::error make_error(errc code, std::string msg) {
  return caf::error(static_cast<uint8_t>(code), category,
                    caf::make_message(std::move(msg)));
}

failure to_failure(const caf::error& e) {
  if (e.category() == category) {
    std::string msg;
    if (e.context().match_elements<std::string>())
      msg = e.context().get_as<std::string>(0);
    return {static_cast<errc>(e.code()), msg};
  }
  if (e == caf::sec::request_timeout)
    return {errc::unavailable, "request timed out"};
  if (e == caf::sec::invalid_argument)   // no handle: its node is down, or this one stopping
    return {errc::unavailable, "the owner's node is down or stopping"};
  if (e == caf::sec::request_receiver_down)
    return {errc::unavailable, "owner actor is down, retry"};
  return {errc::internal, "internal error"};
}

void add_message_types(caf::actor_system_config& cfg) {
  for_each_wire_type([&](auto tag, const char* name) {
    cfg.add_message_type<typename decltype(tag)::type>(name);
  });
  cfg.add_error_category(category, [](uint8_t code, caf::atom_value,
                                      const caf::message& ctx) {
    std::string out = "imengine: ";
    out += to_string(static_cast<errc>(code));
    if (ctx.match_elements<std::string>()) {
      out += " (";
      out += ctx.get_as<std::string>(0);
      out += ")";
    }
    return out;
  });
}

} // namespace imengine
