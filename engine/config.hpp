#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace imengine {

// Every engine flag with its default (docs/PROTOCOL.md and README list them).
struct engine_config {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string data = "./data";
  std::string node = "n1";
  std::string auth = "none";      // none | jwt
  std::string jwt_secret;
  std::string jwt_secret_file;    // main() reads it into jwt_secret
  uint64_t jwt_max_ttl = 0;       // seconds exp may lie ahead of now; 0: no cap
  bool insecure = false;          // allow --auth=none off loopback, plain cluster links off loopback
  std::string log_level = "info"; // trace | debug | info | warn | error | off
  // Abuse limits (docs/OPERATIONS.md recommends values for a public node).
  uint32_t rate_msgs = 0;         // sends per connection per second; 0: no limit
  uint32_t rate_burst = 0;        // token bucket depth; 0: rate_msgs
  uint32_t max_user_conns = 64;   // open connections of one user on this node
  uint32_t max_watch = 1000;      // users one connection may watch for presence
  uint32_t actor_idle_s = 30;     // an idle user actor stops after this; 0: never
  // HTTP/upgrade hardening (docs/OPERATIONS.md).
  uint32_t max_conns = 100000;    // open WebSockets; upgrades beyond get 503
  uint32_t handshake_timeout_ms = 5000;   // to complete an HTTP request or upgrade
  std::vector<std::string> allowed_origins;   // empty: any Origin may upgrade
  // /metrics and /cluster: loopback peers (unless metrics_require_token,
  // e.g. behind a reverse proxy on the same host) or a bearer token.
  std::string metrics_token;
  std::string metrics_token_file; // main() reads it into metrics_token
  bool metrics_require_token = false;
  // TLS for clients: both PEM files given, the port serves wss:// and
  // https:// only.
  std::string tls_cert;
  std::string tls_key;
  std::string sync = "full";      // full | none
  uint32_t large_group = 500;
  uint32_t retransmit_ms = 3000;
  uint32_t max_retransmits = 5;
  uint32_t heartbeat_ms = 15000;
  uint32_t max_frame = 65536;
  uint64_t dedupe_ttl = 86400;    // seconds
  uint64_t map_size_mb = 65536;   // LMDB map size (address space, not disk)
  uint32_t io_threads = 1;
  uint32_t push_window = 1024;    // unacked pushes per connection before pausing
  uint32_t slow_queue = 256;      // queued frames above which room pushes become notify
  uint32_t recall_window = 120;   // seconds a sender may recall or edit its message
  bool fault_injection = false;   // serves `_crash` frames (tests only)
  // How long a connection waits for its conversation to answer a send
  // before it answers `unavailable` (no flag: tests shorten it).
  uint32_t send_timeout_ms = 30000;
  // How long a conversation waits for an inbox on this node to confirm a
  // copy before it resends from its watermark (no flag: tests shorten it).
  uint32_t fanout_timeout_ms = 30000;
  // The server API (docs/API.md): off while both are empty. main() reads
  // api_key_file into api_key.
  std::string api_key;
  std::string api_key_file;
  // Cluster (docs/CLUSTER.md). Without peers the node runs alone and opens
  // no cluster port.
  std::string peers;                     // n1@host:port,n2@host:port,...
  uint16_t cluster_port = 0;             // this node's; 0: its own entry in peers
  std::string cluster_host = "127.0.0.1";
  // Cluster links over TLS (CAF's caf-openssl), all three or none: this
  // node's certificate chain and key (PEM, key unencrypted), and the CA
  // that signs every node's certificate; peers must present one it signed.
  std::string cluster_cert;
  std::string cluster_key;
  std::string cluster_ca;
  bool cluster_tls() const { return !cluster_cert.empty(); }   // check_flags: all or none
  // Actor plugins (docs/PLUGINS.md): shared libraries loaded at start, in
  // order, and a JSON file with one object of settings per plugin name.
  std::vector<std::string> plugins;
  std::string plugin_config;
};

} // namespace imengine
