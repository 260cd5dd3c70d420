// chat_cli: a terminal chat client for imengine.
//
//   chat_cli --user=alice [--device=cli] [--host=127.0.0.1] [--port=8080]
//
// Prints the inbox (sync), then every push as it arrives (and acks it).
// Lines typed are sent to the current conversation; commands:
//   /to <conv>     switch conversation (e.g. /to dm:alice:bob)
//   /history       last 20 messages of the current conversation
//   /quit

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "net/ws_client.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::mutex out_mtx;

void print(const std::string& line) {
  std::lock_guard<std::mutex> g(out_mtx);
  std::cout << line << std::endl;
}

std::string show(const json& m) {
  return "[" + m.value("conv", "") + " #" + std::to_string(m.value("seq", 0))
         + "] " + m.value("from", "") + ": " + m.value("body", "");
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  auto prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind(prefix, 0) == 0)
      return a.substr(prefix.size());
  }
  return def;
}

} // namespace

int main(int argc, char** argv) {
  auto user = arg(argc, argv, "user", "");
  if (user.empty()) {
    std::cerr << "usage: chat_cli --user=NAME [--device=cli] [--host=127.0.0.1] [--port=8080]\n";
    return 2;
  }
  auto device = arg(argc, argv, "device", "cli");
  auto host = arg(argc, argv, "host", "127.0.0.1");
  auto port = static_cast<uint16_t>(std::stoi(arg(argc, argv, "port", "8080")));
  try {
    imengine::net::ws_client c(host, port);
    auto ok = c.request({{"t", "auth"}, {"user", user}, {"device", device}, {"token", ""}});
    if (ok.value("t", "") != "auth_ok") {
      std::cerr << "auth failed: " << ok.dump() << "\n";
      return 1;
    }
    print("connected as " + user + "/" + device + " on node " + ok.value("node", ""));
    uint64_t after = 0;
    while (true) {   // the inbox, page by page (each page acks the previous)
      auto page = c.request({{"t", "sync"}, {"after", after}, {"limit", 200}});
      for (auto& m : page["msgs"]) {
        print(show(m));
        after = m["iseq"].get<uint64_t>();
      }
      if (!page.value("more", false))
        break;
    }
    if (after > 0)
      c.send({{"t", "ack"}, {"iseq", after}});
    std::atomic<bool> done{false};
    std::thread reader([&] {
      while (!done) {
        auto f = c.next(200ms);
        if (!f) {
          if (c.wait_closed(0ms)) {
            print("connection closed" + (c.close_code() ? " (" + std::to_string(*c.close_code()) + ")" : std::string{}));
            done = true;
          }
          continue;
        }
        auto t = f->value("t", "");
        if (t == "msg") {
          print(show(*f));
          if (f->contains("iseq"))
            c.send({{"t", "ack"}, {"iseq", (*f)["iseq"]}});
        } else if (t == "ack") {
          print("  sent #" + std::to_string(f->value("seq", 0)) + (f->value("dup", false) ? " (dup)" : ""));
        } else if (t == "history_result") {
          auto& msgs = (*f)["msgs"];   // newest first: print oldest first
          for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
            print("  " + show(*it));
        } else if (t == "error") {
          print("  error " + f->value("code", "") + ": " + f->value("msg", ""));
        }
      }
    });
    std::string conv;
    std::string line;
    uint64_t n = 0;
    auto prefix = device + "-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    while (!done && std::getline(std::cin, line)) {
      if (line == "/quit")
        break;
      if (line.rfind("/to ", 0) == 0) {
        conv = line.substr(4);
        print("talking in " + conv);
      } else if (line == "/history") {
        if (conv.empty()) {
          print("  pick a conversation first: /to dm:alice:bob");
          continue;
        }
        c.send({{"t", "history"}, {"conv", conv}, {"before", UINT64_MAX >> 1}, {"limit", 20}});
      } else if (!line.empty()) {
        if (conv.empty()) {
          print("  pick a conversation first: /to dm:alice:bob");
          continue;
        }
        c.send({{"t", "send"}, {"conv", conv}, {"cmid", prefix + "-" + std::to_string(++n)},
                {"type", "text"}, {"body", line}});
      }
    }
    done = true;
    reader.join();
    c.close();
  } catch (const std::exception& e) {
    std::cerr << "chat_cli: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
