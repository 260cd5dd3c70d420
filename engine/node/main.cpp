// imengine: one engine node (flags in engine/node/cli.cpp), or one of its
// subcommands (engine/node/commands.cpp). The composition root: it parses,
// checks, logs and wires; the node assembly is in node.cpp.

#include <csignal>
#include <iostream>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "engine/node/cli.hpp"
#include "engine/node/commands.hpp"
#include "engine/node/node.hpp"

namespace {

std::string joined(const std::vector<std::string>& xs) {
  std::string out;
  for (const auto& x : xs)
    out += (out.empty() ? "" : ",") + x;
  return out.empty() ? "none" : out;
}

// One line an operator reads first: what this node is and how it runs.
void log_summary(const imengine::cli_config& cfg, uint16_t port) {
  const auto& e = cfg.engine;
  spdlog::info("imengine {} node {}: data {}, auth {}, sync {}, listening on {}:{}, "
               "{} io thread(s), {} CAF worker(s)",
               imengine::engine_version(), e.node, e.data, e.auth, e.sync, e.host, port,
               e.io_threads, caf::get_or(cfg.content, "scheduler.max-threads", size_t{0}));
  spdlog::info("cluster peers: {}{}; plugins: {}; server API: {}; client TLS: {}",
               e.peers.empty() ? "none" : e.peers,
               e.peers.empty() ? "" : e.cluster_tls() ? " (links over TLS)" : " (plain links)",
               joined(e.plugins),
               e.api_key.empty() ? "off" : "on", e.tls_cert.empty() ? "off" : e.tls_cert);
  if (e.auth == "none")
    spdlog::warn("--auth=none: any client may log in as any user{}",
                 e.insecure ? " (--insecure: also from the network)" : "");
}

} // namespace

int main(int argc, char** argv) {
  if (auto code = imengine::run_command(argc, argv))
    return *code;
  // SIGINT/SIGTERM are taken by sigwait on this thread only: block them
  // before any other thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A file over its size limit fails the write with EFBIG, answered
  // `storage` like a full disk, instead of killing the engine.
  std::signal(SIGXFSZ, SIG_IGN);

  // Logs go to stderr: stdout carries only the "listening" line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("imengine"));
  imengine::cli_config cfg;
  if (imengine::wants_version(argc, argv)) {
    std::cout << "imengine " << imengine::engine_version() << "\n";
    return 0;
  }
  if (imengine::wants_help(argc, argv)) {
    std::cout << imengine::help_text(cfg);
    return 0;
  }
  // CAF stops reading flags at the first word that is not one.
  if (auto stray = imengine::stray_argument(argc, argv); !stray.empty()) {
    std::cerr << "imengine: unexpected argument '" << stray
              << "' (flags are --name=value; imengine --help lists them)\n";
    return 2;
  }
  if (auto flag = imengine::unknown_flag(cfg, argc, argv); !flag.empty()) {
    std::cerr << "imengine: unknown flag '" << flag << "' (imengine --help lists them)\n";
    return 2;
  }
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "imengine: " << to_string(err) << " (imengine --help lists the flags)\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  if (auto problem = imengine::check_flags(cfg.engine); !problem.empty()) {
    std::cerr << "imengine: " << problem << "\n";
    return 2;
  }
  imengine::default_worker_count(cfg, std::thread::hardware_concurrency());
  spdlog::set_level(spdlog::level::from_str(cfg.engine.log_level));
  try {
    imengine::node n(cfg, cfg.engine);
    auto port = n.start();
    log_summary(cfg, port);
    // Tests and scripts wait for this line.
    std::cout << "imengine listening on " << (cfg.engine.tls_cert.empty() ? "ws" : "wss")
              << "://" << cfg.engine.host << ":" << port << "/ws"
              << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("signal {}: stopping", sig);
    n.stop();
  } catch (const std::exception& e) {
    std::cerr << "imengine: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
