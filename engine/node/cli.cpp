#include "engine/node/cli.hpp"

#include <algorithm>
#include <sstream>
#include <string_view>

#include <caf/config_option.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/settings.hpp>

#include "engine/api_auth.hpp"
#include "engine/cluster.hpp"
#include "engine/node/cluster_tls.hpp"
#include "net/server.hpp"

#ifndef IMENGINE_VERSION
#define IMENGINE_VERSION "unknown"
#endif

namespace imengine {

namespace {

// CAF's own entries in the "global" group; --help lists them apart.
bool caf_option(std::string_view name) {
  return name == "help" || name == "long-help" || name == "dump-config"
         || name == "config-file";
}

bool any_arg(int argc, char** argv, std::initializer_list<std::string_view> names) {
  for (int i = 1; i < argc; ++i)
    if (std::find(names.begin(), names.end(), std::string_view{argv[i]}) != names.end())
      return true;
  return false;
}

// Cluster links carry every message in the clear unless TLS is on: all
// three TLS flags or none; without them, only loopback links (or
// --insecure). Checked before the node name so that a test can see
// --insecure pass here and stop at a bad --node before binding anything.
std::string check_cluster_tls(const engine_config& e, const std::vector<peer>& peers) {
  std::string missing;
  int given = 0;
  for (auto [flag, value] : {std::pair{"--cluster-cert", &e.cluster_cert},
                             std::pair{"--cluster-key", &e.cluster_key},
                             std::pair{"--cluster-ca", &e.cluster_ca}}) {
    if (value->empty())
      missing += (missing.empty() ? "" : ", ") + std::string(flag);
    else
      ++given;
  }
  if (given == 3)
    return check_cluster_tls_files(e);
  if (given > 0)
    return "cluster TLS needs --cluster-cert, --cluster-key and --cluster-ca: missing " + missing;
  auto linked = std::any_of(peers.begin(), peers.end(),
                            [&](const peer& p) { return p.name != e.node; });
  if (!linked || e.insecure)
    return {};
  auto refuse = [](const std::string& what) {
    return what + " is not loopback: cluster links would be unencrypted; pass --cluster-cert, "
                  "--cluster-key and --cluster-ca (TLS), or --insecure";
  };
  if (!is_loopback_host(e.cluster_host))
    return refuse("--cluster-host=" + e.cluster_host);
  for (const auto& p : peers)
    if (!is_loopback_host(p.host))
      return refuse("--peers entry " + p.name + "@" + p.host);
  return {};
}

// The cluster flags, checked and completed: this node's cluster port
// comes from its own --peers entry unless given.
std::string check_cluster(engine_config& e) {
  auto peers = parse_peers(e.peers);
  if (!peers)
    return peers.error().msg;
  if (auto problem = check_cluster_tls(e, *peers); !problem.empty())
    return problem;
  if (!valid_node(e.node))
    return "--node must be 1-32 chars of [A-Za-z0-9_-]";
  for (const auto& p : *peers) {
    if (p.name != e.node)
      continue;
    if (e.cluster_port != 0 && e.cluster_port != p.port)
      return "--cluster-port " + std::to_string(e.cluster_port) + " differs from " + p.name
             + "'s --peers entry (port " + std::to_string(p.port) + ")";
    e.cluster_port = p.port;
  }
  if (peers->size() > 1024)   // message ids hold a 10-bit node number
    return "--peers lists more than 1024 nodes";
  if (!peers->empty() && e.cluster_port == 0)
    return "--peers needs --cluster-port (or an entry for --node " + e.node + ")";
  return {};
}

// A secret given inline or as a file, not both; the file's content wins.
std::string read_secret(std::string& value, const std::string& file, const char* flag,
                        const char* file_flag) {
  if (file.empty())
    return {};
  if (!value.empty())
    return std::string("give ") + flag + " or " + file_flag + ", not both";
  auto secret = read_secret_file(file_flag, file);
  if (!secret)
    return secret.error().msg;
  value = *secret;
  return {};
}

} // namespace

cli_config::cli_config() {
  auto& e = engine;
  opt_group{custom_options_, "global"}
    .add(e.host, "host", "address to listen on")
    .add(e.port, "port", "WebSocket/HTTP port (0 picks one)")
    .add(e.data, "data", "LMDB data directory")
    .add(e.node, "node", "node name")
    .add(e.auth, "auth", "none | jwt")
    .add(e.jwt_secret, "jwt-secret", "HS256 secret for --auth=jwt")
    .add(e.jwt_secret_file, "jwt-secret-file", "as --jwt-secret, the secret read from this file")
    .add(e.jwt_max_ttl, "jwt-max-ttl", "seconds a token's exp may lie ahead (0: no cap)")
    .add(e.insecure, "insecure",
         "allow --auth=none on a non-loopback --host, and cluster links without TLS off loopback")
    .add(e.log_level, "log-level", "trace | debug | info | warn | error | off")
    .add(e.sync, "sync", "full (fsync each commit) | none")
    .add(e.large_group, "large-group", "members above which groups use read diffusion")
    .add(e.retransmit_ms, "retransmit-ms", "push retransmit timeout")
    .add(e.max_retransmits, "max-retransmits", "retransmits before closing with 4002")
    .add(e.heartbeat_ms, "heartbeat-ms", "ping period; silent for two periods -> dropped")
    .add(e.max_frame, "max-frame", "largest accepted frame in bytes")
    .add(e.rate_msgs, "rate-msgs", "messages per connection per second (0: no limit)")
    .add(e.rate_burst, "rate-burst", "messages a connection may send at once (0: --rate-msgs)")
    .add(e.max_user_conns, "max-user-conns", "open connections of one user on this node")
    .add(e.max_watch, "max-watch", "users one connection may watch for presence")
    .add(e.actor_idle_s, "actor-idle-s", "seconds after which an idle user or conversation actor stops (0: never)")
    .add(e.max_conns, "max-conns", "open WebSocket connections; upgrades beyond get 503")
    .add(e.handshake_timeout_ms, "handshake-timeout-ms",
         "ms to complete an HTTP request or WebSocket upgrade before the socket closes")
    .add(e.allowed_origins, "allowed-origins",
         "Origins allowed to upgrade: [\"https://app.example\",...] (default: any)")
    .add(e.metrics_token, "metrics-token",
         "bearer token that opens /metrics and /cluster to non-loopback peers")
    .add(e.metrics_token_file, "metrics-token-file", "as --metrics-token, read from this file")
    .add(e.metrics_require_token, "metrics-require-token",
         "loopback peers too need --metrics-token for /metrics and /cluster (local proxy)")
    .add(e.tls_cert, "tls-cert", "PEM certificate chain: the port serves wss:// and https://")
    .add(e.tls_key, "tls-key", "PEM private key of --tls-cert")
    .add(e.dedupe_ttl, "dedupe-ttl", "seconds a cmid is remembered at least")
    .add(e.map_size_mb, "map-size-mb", "LMDB map size in MiB")
    .add(e.io_threads, "io-threads", "network threads")
    .add(e.push_window, "push-window", "unacked pushes per connection")
    .add(e.slow_queue, "slow-queue", "queued frames above which room pushes become notify")
    .add(e.recall_window, "recall-window", "seconds a sender may recall or edit a message")
    .add(e.fault_injection, "fault-injection", "serve _crash frames that kill actors (tests)")
    .add(e.api_key, "api-key", "enables the server API under /api/ with this bearer key")
    .add(e.api_key_file, "api-key-file", "as --api-key, the key read from this file")
    .add(e.peers, "peers", "cluster nodes: n1@host:port,n2@host:port,... (may include this one)")
    .add(e.cluster_port, "cluster-port", "this node's cluster port (default: its --peers entry)")
    .add(e.cluster_host, "cluster-host", "address the cluster port binds")
    .add(e.cluster_cert, "cluster-cert", "cluster links over TLS: this node's certificate (PEM)")
    .add(e.cluster_key, "cluster-key", "the private key of --cluster-cert (PEM, unencrypted)")
    .add(e.cluster_ca, "cluster-ca", "the CA (PEM) that signs every node's --cluster-cert")
    .add(e.plugins, "plugins", "actor plugins to load: [\"/path/a.so\",...]")
    .add(e.plugin_config, "plugin-config", "JSON file: one settings object per plugin name");
}

std::string engine_version() {
  return IMENGINE_VERSION;
}

std::string stray_argument(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-')
      return argv[i];
  return {};
}

std::string unknown_flag(const cli_config& cfg, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.rfind("--", 0) != 0)
      continue;   // short options are CAF's (-h); stray words are found apart
    auto name = arg.substr(2, arg.find('=') == std::string_view::npos ? std::string_view::npos
                                                                     : arg.find('=') - 2);
    if (cfg.options().cli_long_name_lookup(caf::string_view{name.data(), name.size()}) == nullptr)
      return std::string(arg);
  }
  return {};
}

bool wants_help(int argc, char** argv) {
  return any_arg(argc, argv, {"--help", "-h", "-?"});
}

bool wants_version(int argc, char** argv) {
  return any_arg(argc, argv, {"--version"});
}

std::string help_text(const cli_config& cfg) {
  std::ostringstream out;
  out << "imengine " << engine_version() << ": an instant-messaging engine\n\n"
      << "usage: imengine [--flag=value ...]            run a node\n"
      << "       imengine backup --data=DIR --to=PATH   compacted copy of a (running) node's data\n"
      << "       imengine token --sub=USER [--ttl=S] (--jwt-secret=S | --jwt-secret-file=F)\n"
      << "                                              print an HS256 token for --auth=jwt\n"
      << "       imengine --version | --help\n\n"
      << "engine flags (also read from caf-application.ini, or --config-file=PATH):\n";
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  auto str = [](caf::string_view s) { return std::string(s.data(), s.size()); };
  for (const auto& opt : cfg.options()) {
    auto name = str(opt.long_name());
    if (str(opt.category()) != "global" || caf_option(name))
      continue;
    auto flag = "--" + name + "=<" + str(opt.type_name()) + ">";
    width = std::max(width, flag.size());
    rows.emplace_back(std::move(flag), str(opt.description()));
  }
  for (const auto& [flag, what] : rows)
    out << "  " << flag << std::string(width - flag.size() + 2, ' ') << what << "\n";
  out << "\nCAF's options (scheduler, logging, middleman, ...): imengine --long-help\n"
      << "Every flag, with examples: docs/OPERATIONS.md\n";
  return out.str();
}

void default_worker_count(cli_config& cfg, unsigned cores) {
  if (caf::get_if(&cfg.content, "scheduler.max-threads"))
    return;
  size_t io = cfg.engine.io_threads;
  size_t workers = cores > io ? cores - io : 1;
  caf::put(cfg.content, "scheduler.max-threads", workers);
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string check_flags(engine_config& e) {
  if (e.auth != "none" && e.auth != "jwt")
    return "--auth must be none or jwt";
  if (auto problem = read_secret(e.jwt_secret, e.jwt_secret_file, "--jwt-secret",
                                 "--jwt-secret-file");
      !problem.empty())
    return problem;
  if (e.auth == "jwt" && e.jwt_secret.empty())
    return "--auth=jwt needs --jwt-secret or --jwt-secret-file";
  if (e.auth == "none" && !is_loopback_host(e.host) && !e.insecure)
    return "--auth=none on --host=" + e.host
           + " lets anyone log in as anyone: use --auth=jwt, a loopback --host, or --insecure";
  if (e.sync != "full" && e.sync != "none")
    return "--sync must be full or none";
  static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
  if (std::find(std::begin(levels), std::end(levels), e.log_level) == std::end(levels))
    return "--log-level must be trace, debug, info, warn, error or off";
  if (auto problem = read_secret(e.api_key, e.api_key_file, "--api-key", "--api-key-file");
      !problem.empty())
    return problem;
  if (auto problem = read_secret(e.metrics_token, e.metrics_token_file, "--metrics-token",
                                 "--metrics-token-file");
      !problem.empty())
    return problem;
  if (e.tls_cert.empty() != e.tls_key.empty())
    return e.tls_cert.empty() ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key";
  if (!e.tls_cert.empty())
    if (auto problem = net::check_tls(e.tls_cert, e.tls_key))
      return (problem->in_key ? "--tls-key " + e.tls_key : "--tls-cert " + e.tls_cert) + ": "
             + problem->why;
  if (e.max_conns < 1)
    return "--max-conns must be at least 1";
  if (e.handshake_timeout_ms < 10)
    return "--handshake-timeout-ms must be at least 10";
  if (e.max_frame < 256 || e.heartbeat_ms < 10 || e.retransmit_ms < 10 || e.push_window < 1
      || e.io_threads < 1 || e.max_user_conns < 1)
    return "a numeric flag is out of range";
  if (e.rate_burst == 0)
    e.rate_burst = e.rate_msgs;
  return check_cluster(e);
}

} // namespace imengine
