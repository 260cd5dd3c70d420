#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

namespace boost::asio::ssl {
class context;
}

#include "net/server.hpp"

namespace imengine::net {

class ws_conn;

// A strand executor must not outlive its io_context (destroying the last
// copy touches the context's strand service), yet sinks live as long as the
// actors want. So a session owns its strand in a shared box, sinks and the
// registry hold it weakly, and posting goes through the io_gate, which the
// server shuts before its io_context goes away.
using strand_box = std::shared_ptr<const boost::asio::any_io_executor>;

struct io_gate {
  std::shared_mutex mtx;
  bool open = true;

  // Posts `f` to the strand in `box` while the server's io_context lives;
  // false when the strand or the server is gone (nothing posted).
  template <class F>
  bool post(const std::weak_ptr<const boost::asio::any_io_executor>& box, F&& f) {
    std::shared_lock<std::shared_mutex> lock(mtx);
    if (!open)
      return false;
    auto strand = box.lock();
    if (!strand)
      return false;
    boost::asio::post(*strand, std::forward<F>(f));
    return true;
  }

  // Runs `f` while the server's io_context lives, holding it alive until
  // `f` returns (to post onto an executor no strand_box holds); false
  // when it is gone (`f` not run).
  template <class F>
  bool while_open(F&& f) {
    std::shared_lock<std::shared_mutex> lock(mtx);
    if (!open)
      return false;
    f();
    return true;
  }

  void shut() {
    std::unique_lock<std::shared_mutex> lock(mtx);
    open = false;
  }
};

// What every session of one server shares: the options, the callbacks,
// and the registry of open WebSockets (for close_all and stop).
struct server_shared {
  server_options opts;
  open_handler on_open;
  http_handlers http;
  // Set when the port serves TLS (server_options::tls_cert/tls_key).
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::shared_ptr<io_gate> gate = std::make_shared<io_gate>();

  void count(refusal r) const {
    if (http.refused)
      http.refused(r);
  }

  // WebSocket slots (max_conns): taken before an upgrade is accepted, given
  // back when its session finishes. Counted apart from the registry so that
  // the check and the taking are one atomic step across io threads.
  bool take_slot() {
    auto n = open_slots_.load(std::memory_order_relaxed);
    do {
      if (n >= opts.max_conns)
        return false;
    } while (!open_slots_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
  }
  void give_slot() { open_slots_.fetch_sub(1, std::memory_order_relaxed); }

  struct entry {
    std::weak_ptr<ws_conn> session;
    std::weak_ptr<const boost::asio::any_io_executor> strand;
    // Frames queued on it, read from any thread (see session_sink).
    std::shared_ptr<const std::atomic<size_t>> backlog;
  };

  void add(const std::shared_ptr<ws_conn>& s, const strand_box& strand,
           std::shared_ptr<const std::atomic<size_t>> backlog) {
    std::lock_guard<std::mutex> guard(mtx_);
    sessions_.emplace(s.get(), entry{s, strand, std::move(backlog)});
  }

  // Summed when /metrics is read, not kept up to date per frame: the
  // write path pays nothing for it.
  write_queues queued() {
    write_queues q;
    std::lock_guard<std::mutex> guard(mtx_);
    for (const auto& [_, e] : sessions_) {
      auto n = e.backlog->load(std::memory_order_relaxed);
      q.frames += n;
      q.longest = std::max(q.longest, n);
    }
    return q;
  }

  void remove(const ws_conn* s) {
    std::lock_guard<std::mutex> guard(mtx_);
    if (sessions_.erase(s) > 0 && sessions_.empty())
      empty_.notify_all();
  }

  std::vector<entry> snapshot() {
    std::lock_guard<std::mutex> guard(mtx_);
    std::vector<entry> out;
    out.reserve(sessions_.size());
    for (auto& kv : sessions_)
      out.push_back(kv.second);
    return out;
  }

  // Posts `f(session&)` onto each open session's strand; the session's
  // weak pointer is locked there, never on the calling thread.
  template <class F>
  void for_each_on_strand(F f) {
    for (auto& e : snapshot())
      gate->post(e.strand, [w = e.session, f] {
        if (auto s = w.lock())
          f(*s);
      });
  }

  // True once no session is registered, false if `timeout` passed first.
  bool wait_empty(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mtx_);
    return empty_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
  }

private:
  std::atomic<size_t> open_slots_{0};
  std::mutex mtx_;
  std::condition_variable empty_;
  std::unordered_map<const ws_conn*, entry> sessions_;
};

} // namespace imengine::net
