// webhook: POSTs every committed message of the conversations it is
// registered for, as JSON, to a local URL, the way search indexing or
// analytics are wired to a chat backend. Settings:
//   {"webhook":{"url":"http://127.0.0.1:9000/hook", "retries":5,
//               "timeout_ms":2000, "queue":1000, "convs":["g:"]}}
// A POST that fails (no connection, timeout, non-2xx) is retried with a
// doubling pause from 100 ms; after `retries` it is logged and dropped.
// The queue is the engine's: at most `queue` messages wait for this plugin,
// more are dropped and counted (imengine_plugin_dropped_total), so a dead
// endpoint cannot grow the engine's memory.

#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <imengine/plugin.hpp>
#include <nlohmann/json.hpp>

namespace {

using namespace imengine::plugin;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

struct endpoint {
  std::string host, port, target;
};

// http://HOST:PORT/PATH only: a local collector, no TLS.
bool parse_url(const std::string& url, endpoint& out) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    return false;
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = authority.rfind(':');
  out.host = authority.substr(0, colon);
  out.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  return !out.host.empty() && !out.port.empty();
}

// One POST with one deadline over connect, write and read.
bool post(const endpoint& ep, const std::string& body, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto addrs = resolver.resolve(ep.host, ep.port, ec);
  if (ec)
    return false;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::verb::post, ep.target, 11};
  req.set(http::field::host, ep.host);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::connection, "close");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  bool ok = false;
  stream.expires_after(timeout);
  stream.async_connect(addrs, [&](beast::error_code e, const auto&) {
    if (e)
      return;
    http::async_write(stream, req, [&](beast::error_code e, size_t) {
      if (e)
        return;
      http::async_read(stream, buf, res, [&](beast::error_code e, size_t) {
        ok = !e && res.result_int() / 100 == 2;
      });
    });
  });
  ioc.run();
  return ok;
}

struct settings {
  endpoint ep;
  int retries = 5;
  std::chrono::milliseconds timeout{2000};
};

std::string render(const event& e) {
  auto ex = json::parse(e.ex, nullptr, false);
  return json{{"conv", e.conv},  {"seq", e.seq},   {"mid", std::to_string(e.mid)},
              {"from", e.from},  {"device", e.device}, {"type", e.type},
              {"body", e.body},  {"ex", ex.is_discarded() ? json::object() : ex},
              {"ts", e.ts}}
    .dump();
}

// Detached (its own thread): blocking on the endpoint holds nothing of
// the engine's. Messages are posted one at a time, in the order committed.
after_persist_actor::behavior_type hook(after_persist_actor::pointer self, settings s) {
  return {
    [=](after_persist_atom, const event& e) {
      auto body = render(e);
      auto pause = std::chrono::milliseconds(100);
      for (int attempt = 0; attempt <= s.retries; ++attempt) {
        if (post(s.ep, body, s.timeout))
          return;
        if (attempt < s.retries) {
          std::this_thread::sleep_for(pause);
          pause *= 2;
        }
      }
      caf::aout(self) << "webhook: dropped " << e.conv << " #" << e.seq << " after "
                      << s.retries << " retries" << std::endl;
    },
  };
}

bool init(registrar& r) {
  auto cfg = json::parse(r.config());
  settings s;
  if (!parse_url(cfg.value("url", std::string{}), s.ep)) {
    r.log("needs {\"url\": \"http://HOST:PORT/PATH\"}");
    return false;
  }
  s.retries = cfg.value("retries", 5);
  s.timeout = std::chrono::milliseconds(cfg.value("timeout_ms", 2000));
  hook_options o;
  o.max_pending = cfg.value("queue", 1000u);
  o.deadline = s.timeout * (s.retries + 1);   // a call may take all its retries
  for (const auto& c : cfg.value("convs", json::array()))
    o.convs.push_back(c.get<std::string>());
  if (s.retries < 0 || s.timeout.count() <= 0 || o.max_pending == 0) {
    r.log("retries, timeout_ms and queue must be positive");
    return false;
  }
  r.after_persist([s](after_persist_actor::pointer self) { return hook(self, s); }, o);
  return true;
}

} // namespace

IMENGINE_PLUGIN("webhook", init)
