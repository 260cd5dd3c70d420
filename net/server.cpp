#include "net/server.hpp"

#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "net/server_shared.hpp"
#include "net/session.hpp"

namespace imengine::net {

struct server::impl {
  std::shared_ptr<server_shared> shared = std::make_shared<server_shared>();
  asio::io_context ioc;
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::vector<std::thread> threads;
  bool started = false;
  bool stopped = false;

  explicit impl(unsigned threads_hint) : ioc(static_cast<int>(threads_hint)) {}

  void do_accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        fail(ec, "accept");
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
          return;
      } else {
        std::make_shared<http_session>(std::move(s), shared)->run();
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
  const auto& opts = d.shared->opts;
  tcp::endpoint ep{asio::ip::make_address(opts.host), opts.port};
  d.acceptor.open(ep.protocol());
  d.acceptor.set_option(asio::socket_base::reuse_address(true));
  d.acceptor.bind(ep);   // throws system_error
  d.acceptor.listen(asio::socket_base::max_listen_connections);
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
  if (!d.started)
    return;
  asio::post(d.acceptor.get_executor(), [&d] {
    beast::error_code ec;
    d.acceptor.close(ec);
  });
}

void server::close_all(uint16_t code) {
  std::vector<std::shared_ptr<ws_session>> open;
  {
    std::lock_guard<std::mutex> guard(impl_->shared->mtx);
    for (auto& kv : impl_->shared->sessions)
      if (auto s = kv.second.lock())
        open.push_back(std::move(s));
  }
  for (auto& s : open)
    asio::post(s->executor(), [s, code] { s->start_close(code, "going away"); });
}

void server::stop() {
  auto& d = *impl_;
  if (!d.started || d.stopped)
    return;
  d.stopped = true;
  stop_accepting();
  close_all(1001);
  d.guard.reset();
  // Give closing handshakes a moment, then cut whatever is left.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (d.shared->count() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  d.ioc.stop();
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
}

} // namespace imengine::net
