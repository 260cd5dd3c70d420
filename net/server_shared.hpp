#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>

#include "net/server.hpp"

namespace imengine::net {

class ws_session;

// What every session of one server shares: the options, the callbacks,
// and the registry of open WebSockets (for close_all).
struct server_shared {
  server_options opts;
  open_handler on_open;
  http_handlers http;
  std::mutex mtx;
  std::unordered_map<const ws_session*, std::weak_ptr<ws_session>> sessions;

  void add(const std::shared_ptr<ws_session>& s) {
    std::lock_guard<std::mutex> guard(mtx);
    sessions.emplace(s.get(), s);
  }
  void remove(const ws_session* s) {
    std::lock_guard<std::mutex> guard(mtx);
    sessions.erase(s);
  }
  size_t count() {
    std::lock_guard<std::mutex> guard(mtx);
    return sessions.size();
  }
};

} // namespace imengine::net
