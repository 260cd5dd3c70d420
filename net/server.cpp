#include "net/server.hpp"

#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "net/server_shared.hpp"
#include "net/session.hpp"
#include "net/tls.hpp"

namespace imengine::net {

struct server::impl {
  std::shared_ptr<server_shared> shared = std::make_shared<server_shared>();
  asio::io_context ioc;
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::vector<std::thread> threads;
  std::mutex state_mtx;   // start/stop may come from different threads
  bool started = false;
  bool stopped = false;

  explicit impl(unsigned concurrency) : ioc(static_cast<int>(concurrency)) {}

  void do_accept() {
    // Each connection gets its own strand: its handlers never run
    // concurrently, whatever the number of io threads.
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (!acceptor.is_open())
        return;   // stop_accepting
      if (ec) {
        fail(ec, "accept");   // e.g. out of descriptors: keep listening
      } else {
        // Frames are written whole: Nagle would hold a frame's tail until
        // the peer's delayed ACK (40 ms per sync page, measured).
        beast::error_code opt_ec;
        s.set_option(tcp::no_delay(true), opt_ec);
        if (shared->tls)
          std::make_shared<http_session<tls_stream>>(
            tls_stream(plain_stream(std::move(s)), *shared->tls), shared)->run();
        else
          std::make_shared<http_session<plain_stream>>(plain_stream(std::move(s)), shared)->run();
      }
      do_accept();
    });
  }
};

server::server(server_options opts, open_handler on_open, http_handlers http)
  : impl_(std::make_unique<impl>(std::max(1u, opts.threads))) {
  impl_->shared->opts = std::move(opts);
  impl_->shared->on_open = std::move(on_open);
  impl_->shared->http = std::move(http);
}

server::~server() {
  stop();
}

uint16_t server::start() {
  auto& d = *impl_;
  std::lock_guard<std::mutex> lock(d.state_mtx);
  if (d.started)
    return d.acceptor.local_endpoint().port();
  const auto& opts = d.shared->opts;
  // Boost 1.74's system_error is not a std::system_error: convert.
  beast::error_code ec;
  auto check = [&](const char* what) {
    if (!ec)
      return;
    beast::error_code ignored;
    d.acceptor.close(ignored);   // so that start() may be tried again
    throw std::system_error(static_cast<std::error_code>(ec),
                              std::string(what) + " " + opts.host + ":" + std::to_string(opts.port));
  };
  if (!opts.tls_cert.empty() || !opts.tls_key.empty())
    d.shared->tls = make_tls_context(opts.tls_cert, opts.tls_key);   // throws
  auto address = asio::ip::make_address(opts.host, ec);
  check("bad address");
  tcp::endpoint ep{address, opts.port};
  d.acceptor.open(ep.protocol(), ec);
  check("open");
  d.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  check("reuse_address");
  d.acceptor.bind(ep, ec);
  check("bind");
  d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  check("listen");
  auto port = d.acceptor.local_endpoint().port();
  d.guard.emplace(d.ioc.get_executor());
  d.do_accept();
  for (unsigned i = 0; i < std::max(1u, opts.threads); ++i)
    d.threads.emplace_back([&d] { d.ioc.run(); });
  d.started = true;
  return port;
}

void server::stop_accepting() {
  auto& d = *impl_;
  // The acceptor lives on its strand; closing it there ends the accept loop.
  asio::post(d.acceptor.get_executor(), [&d] {
    beast::error_code ec;
    d.acceptor.close(ec);
  });
}

write_queues server::queued_frames() const {
  return impl_->shared->queued();
}

void server::close_all(uint16_t code) {
  impl_->shared->for_each_on_strand(
    [code](ws_conn& s) { s.start_close(code, code == 1001 ? "going away" : "closed"); });
}

void server::stop() {
  auto& d = *impl_;
  std::lock_guard<std::mutex> lock(d.state_mtx);
  if (!d.started || d.stopped)
    return;
  d.stopped = true;
  stop_accepting();
  close_all(1001);
  d.guard.reset();
  // Closing handshakes get a moment; peers that do not answer are cut off,
  // which reports their on_close at once.
  if (!d.shared->wait_empty(std::chrono::milliseconds(1500))) {
    d.shared->for_each_on_strand([](ws_conn& s) { s.abort(); });
    d.shared->wait_empty(std::chrono::milliseconds(500));
  }
  // Plain HTTP connections are not tracked: they just go with the context.
  d.ioc.stop();
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
  // Sinks that outlive us must not post into a dead io_context.
  d.shared->gate->shut();
  // A session whose strand never ran the abort (no io thread left) still
  // gets its on_close: no other thread touches it any more.
  for (auto& e : d.shared->snapshot())
    if (auto s = e.session.lock())
      s->abort();
}

} // namespace imengine::net
