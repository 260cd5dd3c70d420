// chat_cli: a terminal chat client for imengine, on chat::chat_client
// (examples/chat_client.hpp). `chat_cli --help` tells how to use it.

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "examples/chat_client.hpp"

using chat::json;

namespace {

const char* help_text = R"(chat_cli - a terminal chat client for imengine

Connects to an imengine node over WebSocket, shows every message as it
arrives and sends the lines you type to the current conversation. It
reconnects by itself when the connection drops (the engine restarted, the
network went away), keeps unsent lines and resends them once back online
(each exactly once), and keeps its place in the inbox in a state file, so a
restart shows only what is new.

Usage:
  chat_cli --user=NAME [flags]

Flags:
  --user=NAME     who you are (required; 1-64 chars of A-Z a-z 0-9 _ . @ -)
  --device=ID     this device's id (default: cli); a second client with the
                  same user and device replaces this one
  --host=HOST     engine address (default: 127.0.0.1)
  --port=PORT     engine WebSocket/HTTP port, 1-65535 (default: 8080)
  --token=JWT     token for an engine running with --auth=jwt (default: none)
  --state=PATH    state file: last inbox position acked, current
                  conversation, unsent lines
                  (default: ./chat_cli-<user>-<device>.json)
  --help          this text

Commands (anything else you type is a message to the current conversation;
@name in a message mentions that user, @all everyone in a group you own):
  /to USER          open the direct conversation with USER (dm:a:b)
  /to g:ID | r:ID   switch to a group or room
  /join r:ID        join a room          /leave r:ID   leave a room
  /group g:ID U...  create a group with members U...
  /add g:ID U...    add members to a group you own
  /history [N]      the last N messages here (default 20, at most 1000)
  /convs            your conversations, with unread and mention counts
  /unread           unread counts
  /read             mark the current conversation read
  /recall SEQ       recall your message #SEQ here
  /edit SEQ TEXT    replace the text of your message #SEQ here
  /mute on|off      silence (or not) the current conversation
  /who USER...      show when these users come online or go offline
  /help             the commands
  /quit             leave (unsent lines stay in the state file)

Messages show as [conversation #seq] from: text.

Example:
  $ chat_cli --user=alice --port=8080
  connected as alice/cli on node n1
  /to bob
  talking in dm:alice:bob
  hi bob
    sent #1
  [dm:alice:bob #1] alice: hi bob
  [dm:alice:bob #2] bob: hi alice, see @alice
  /quit
)";

const char* commands_text = R"(commands: /to USER | /to g:ID | /to r:ID, /join r:ID, /leave r:ID,
  /group g:ID USER..., /add g:ID USER..., /history [N], /convs, /unread, /read,
  /recall SEQ, /edit SEQ TEXT, /mute on|off, /who USER..., /help, /quit)";

std::mutex out_mtx;

void print(const std::string& line) {
  std::lock_guard<std::mutex> g(out_mtx);
  std::cout << line << std::endl;   // flushed: the output may be a pipe
}

struct flags {
  std::string user, device = "cli", host = "127.0.0.1", token, state;
  uint16_t port = 8080;
  bool help = false;
};

// Strict: every flag is --name=value, each at most once; anything else is an error.
std::optional<std::string> parse_flags(int argc, char** argv, flags& f) {
  std::map<std::string, std::string> seen;
  const std::vector<std::string> known{"user", "device", "host", "port", "token", "state"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      f.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0)
      return "unexpected argument '" + a + "' (flags are --name=value)";
    auto eq = a.find('=');
    auto name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (std::find(known.begin(), known.end(), name) == known.end())
      return "unknown flag " + a.substr(0, eq);
    if (eq == std::string::npos)
      return "flag --" + name + " needs a value: --" + name + "=...";
    if (seen.count(name))
      return "flag --" + name + " given twice";
    seen[name] = a.substr(eq + 1);
  }
  if (f.help)
    return std::nullopt;
  if (!seen.count("user"))
    return std::string("--user=NAME is required");
  f.user = seen["user"];
  if (!chat::valid_id(f.user))
    return "--user=" + f.user + " is not a valid user (1-64 chars of A-Z a-z 0-9 _ . @ -)";
  if (seen.count("device"))
    f.device = seen["device"];
  if (!chat::valid_id(f.device))
    return "--device=" + f.device + " is not a valid device (1-64 chars of A-Z a-z 0-9 _ . @ -)";
  if (seen.count("host"))
    f.host = seen["host"];
  if (f.host.empty())
    return std::string("--host must not be empty");
  if (seen.count("port")) {
    auto& p = seen["port"];
    bool digits = !p.empty() && p.size() <= 5
                  && p.find_first_not_of("0123456789") == std::string::npos;
    long v = digits ? std::stol(p) : 0;
    if (!digits || v < 1 || v > 65535)
      return "--port=" + p + " is not a port number (1-65535)";
    f.port = static_cast<uint16_t>(v);
  }
  f.token = seen.count("token") ? seen["token"] : "";
  f.state = seen.count("state") ? seen["state"] : "./chat_cli-" + f.user + "-" + f.device + ".json";
  if (f.state.empty())
    return std::string("--state must not be empty");
  return std::nullopt;
}

// nlohmann's own check, the one that would otherwise throw when the frame is made.
bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

std::optional<uint64_t> positive(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto v = std::stoull(s);
  return v >= 1 ? std::optional<uint64_t>(v) : std::nullopt;
}

std::string seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string error_text(const json& e) {
  return "error " + e.value("code", "?") + ": " + e.value("msg", "");
}

// One message as the terminal shows it: [conv #seq] from: body.
std::string show(const json& m, const std::string& me) {
  auto head = "[" + m.value("conv", "") + " #" + std::to_string(m.value("seq", uint64_t{0})) + "] ";
  auto from = m.value("from", "");
  auto type = m.value("type", "text");
  auto body = m.value("body", "");
  auto target = m.contains("ex") && m["ex"].is_object() ? m["ex"].value("seq", uint64_t{0}) : 0;
  if (type == "system") {
    // Membership notices: {"op":"create"|"add"|"remove"|"join"|"leave","members":[..]}.
    auto b = json::parse(body, nullptr, false);
    if (!b.is_object())
      return head + "* " + from + ": " + body;
    static const std::map<std::string, std::string> verbs{
      {"create", "created the group with"}, {"add", "added"}, {"remove", "removed"},
      {"join", "joined"}, {"leave", "left"}};
    auto op = b.value("op", "");
    auto verb = verbs.count(op) ? verbs.at(op) : op;
    std::string who;
    if (op != "join" && op != "leave")
      for (auto& u : b.value("members", json::array()))
        if (u.is_string())
          who += (who.empty() ? " " : ", ") + u.get<std::string>();
    return head + "* " + from + " " + verb + who;
  }
  if (type == "recall")
    return head + "* " + from + " recalled #" + std::to_string(target);
  if (type == "edit")
    return head + "* " + from + " edited #" + std::to_string(target) + ": " + body;
  std::string line = head + from + ": ";
  if (m.value("recalled", false))
    line += "(recalled)";
  else
    line += body + (m.contains("edited") ? " (edited)" : "");
  if (type != "text")
    line += " [" + type + "]";
  bool mentioned = false;
  for (auto& u : m.value("mentions", json::array()))
    mentioned = mentioned || (u.is_string() && (u == me || u == "@all"));
  if (mentioned && from != me)
    line += "   <- mentions you";
  return line;
}

class cli {
public:
  explicit cli(const flags& f)
    : me_(f.user),
      client_(chat::client_options{f.host, f.port, f.user, f.device, f.token, f.state},
              [this](const chat::event& e) { on_event(e); }) {}

  void start() { client_.start(); }
  chat::chat_client& client() { return client_; }

  // One typed line; false when it was /quit.
  bool line(std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n'))
      s.pop_back();
    if (s.find_first_not_of(" \t") == std::string::npos)
      return true;   // empty lines are not messages
    if (!valid_utf8(s)) {
      print("  not sent: the line is not valid UTF-8");
      return true;
    }
    if (s[0] != '/') {
      text(s);
      return true;
    }
    auto w = words(s);
    auto& cmd = w[0];
    auto conv = client_.conv();
    if (cmd == "/quit")
      return false;
    if (cmd == "/help") {
      print(commands_text);
    } else if (cmd == "/to") {
      to(w);
    } else if (cmd == "/join" || cmd == "/leave") {
      if (w.size() != 2 || w[1].rfind("r:", 0) != 0 || !chat::valid_conv(w[1]))
        return usage(cmd + " r:ID");
      auto room = w[1];
      auto done = cmd == "/join" ? "joined " + room + " (/to " + room + " to talk there)"
                                 : "left " + room;
      request({{"t", cmd.substr(1)}, {"conv", room}}, [done](const json&) { print("  " + done); });
    } else if (cmd == "/group" || cmd == "/add") {
      if (w.size() < (cmd == "/add" ? 3u : 2u) || w[1].rfind("g:", 0) != 0
          || !chat::valid_conv(w[1]))
        return usage(cmd + " g:ID USER...");
      std::vector<std::string> members(w.begin() + 2, w.end());
      for (auto& u : members)
        if (!chat::valid_id(u))
          return refuse("'" + u + "' is not a valid user");
      auto group = w[1];
      auto done = cmd == "/group" ? "created " + group + " (/to " + group + " to talk there)"
                                  : "added to " + group;
      request({{"t", cmd == "/group" ? "group_create" : "group_add"}, {"conv", group},
               {"members", members}},
              [done](const json&) { print("  " + done); });
    } else if (cmd == "/history") {
      if (w.size() > 2)
        return usage("/history [N]");
      uint64_t n = 20;
      if (w.size() == 2) {
        auto v = positive(w[1]);
        if (!v || *v > 1000)
          return usage("/history [N], N from 1 to 1000");
        n = *v;
      }
      if (conv.empty())
        return no_conv();
      auto me = me_;
      request({{"t", "history"}, {"conv", conv}, {"limit", n}}, [conv, me](const json& r) {
        auto msgs = r.value("msgs", json::array());   // newest first
        print("  -- history of " + conv + " (" + std::to_string(msgs.size()) + ") --");
        for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
          print("  " + show(*it, me));
        print("  -- end of history --");
      });
    } else if (cmd == "/convs") {
      if (w.size() != 1)
        return usage("/convs");
      request({{"t", "convs"}, {"limit", 50}}, [](const json& r) { show_convs(r); });
    } else if (cmd == "/unread") {
      if (w.size() != 1)
        return usage("/unread");
      request({{"t", "unread"}}, [](const json& r) {
        print("  " + std::to_string(r.value("total", uint64_t{0})) + " unread");
        for (auto& c : r.value("convs", json::array()))
          print("  " + c.value("conv", "") + ": " + std::to_string(c.value("unread", uint64_t{0})));
      });
    } else if (cmd == "/read") {
      if (w.size() != 1)
        return usage("/read");
      if (conv.empty())
        return no_conv();
      read(conv);
    } else if (cmd == "/recall" || cmd == "/edit") {
      auto seq = w.size() >= 2 ? positive(w[1]) : std::nullopt;
      if (!seq || (cmd == "/recall" && w.size() != 2) || (cmd == "/edit" && w.size() < 3))
        return usage(cmd == "/recall" ? "/recall SEQ" : "/edit SEQ TEXT");
      if (conv.empty())
        return no_conv();
      json f{{"t", cmd.substr(1)}, {"conv", conv}, {"seq", *seq}};
      if (cmd == "/edit") {
        // The new text is the rest of the line after the seq, as typed.
        auto at = s.find(w[1], s.find(cmd) + cmd.size()) + w[1].size();
        f["body"] = s.substr(s.find_first_not_of(" \t", at));
      }
      auto what = cmd == "/recall" ? "recalled" : "edited";
      request(f, [what, seq](const json& r) {
        print(std::string("  ") + what + " #" + std::to_string(*seq) + " (as #"
              + std::to_string(r.value("seq", uint64_t{0})) + ")");
      });
    } else if (cmd == "/mute") {
      if (w.size() != 2 || (w[1] != "on" && w[1] != "off"))
        return usage("/mute on|off");
      if (conv.empty())
        return no_conv();
      bool on = w[1] == "on";
      request({{"t", "mute"}, {"conv", conv}, {"on", on}}, [conv, on](const json&) {
        print(std::string("  ") + (on ? "muted " : "unmuted ") + conv);
      });
    } else if (cmd == "/who") {
      if (w.size() < 2)
        return usage("/who USER...");
      std::vector<std::string> users(w.begin() + 1, w.end());
      for (auto& u : users)
        if (!chat::valid_id(u))
          return refuse("'" + u + "' is not a valid user");
      client_.presence_sub(users);
    } else {
      // Never sent as a message: a typo of a command must not reach the peer.
      print("  unknown command " + cmd + " (not sent); /help lists the commands");
    }
    return true;
  }

private:
  bool usage(const std::string& u) {
    print("  usage: " + u);
    return true;
  }
  bool refuse(const std::string& why) {
    print("  " + why);
    return true;
  }
  bool no_conv() {
    print("  pick a conversation first: /to USER, /to g:ID or /to r:ID");
    return true;
  }

  void request(json frame, std::function<void(const json&)> on_ok) {
    auto t = frame.value("t", "");
    client_.request(std::move(frame), [t, on_ok = std::move(on_ok)](const json& r) {
      if (r.value("t", "") == "error")
        print("  " + error_text(r) + " (" + t + ")");
      else
        on_ok(r);
    });
  }

  void text(const std::string& s) {
    auto conv = client_.conv();
    if (conv.empty()) {
      no_conv();
      return;
    }
    client_.send(conv, s, chat::mentions_of(s));
  }

  void to(const std::vector<std::string>& w) {
    if (w.size() != 2) {
      usage("/to USER | /to g:ID | /to r:ID");
      return;
    }
    std::string conv = w[1];
    if (conv.rfind("g:", 0) != 0 && conv.rfind("r:", 0) != 0 && conv.rfind("dm:", 0) != 0) {
      if (!chat::valid_id(conv)) {
        refuse("'" + conv + "' is not a valid user");
        return;
      }
      if (conv == me_) {
        refuse("a direct conversation needs another user than yourself");
        return;
      }
      conv = chat::dm_id(me_, conv);
    }
    if (!chat::valid_conv(conv)) {
      refuse("'" + conv + "' is not a conversation (dm:a:b with a < b, g:ID, r:ID)");
      return;
    }
    client_.set_conv(conv);
    print("talking in " + conv);
  }

  // Marks read up to the newest message shown, or the newest there is.
  void read(const std::string& conv) {
    if (auto top = client_.top_seq(conv)) {
      client_.read(conv, top);
      print("  marked " + conv + " read up to #" + std::to_string(top));
      return;
    }
    request({{"t", "history"}, {"conv", conv}, {"limit", 1}}, [this, conv](const json& r) {
      auto msgs = r.value("msgs", json::array());
      if (msgs.empty()) {
        print("  " + conv + " has no messages");
        return;
      }
      auto seq = msgs[0].value("seq", uint64_t{0});
      client_.read(conv, seq);
      print("  marked " + conv + " read up to #" + std::to_string(seq));
    });
  }

  static void show_convs(const json& r) {
    auto convs = r.value("convs", json::array());
    if (convs.empty())
      print("  (no conversations)");
    for (auto& c : convs) {
      std::string line = "  " + c.value("conv", "") + " (" + c.value("kind", "") + ")";
      line += " " + std::to_string(c.value("unread", uint64_t{0})) + " unread";
      if (auto n = c.value("mentions", uint64_t{0}))
        line += ", " + std::to_string(n) + " mention" + (n > 1 ? "s" : "");
      if (c.value("muted", false))
        line += ", muted";
      if (c.contains("last") && c["last"].is_object()) {
        auto& l = c["last"];
        line += " | #" + std::to_string(l.value("seq", uint64_t{0})) + " " + l.value("from", "")
                + ": " + (l.value("recalled", false) ? "(recalled)" : l.value("body", ""));
      }
      print(line);
    }
    if (r.value("more", false))
      print("  (more conversations not shown)");
  }

  void on_event(const chat::event& e) {
    auto& d = e.data;
    if (e.type == "msg") {
      print(show(d, me_));
    } else if (e.type == "state") {
      state(d);
    } else if (e.type == "sent") {
      print("  sent #" + std::to_string(d.value("seq", uint64_t{0}))
            + (d.value("dup", false) ? " (it had arrived before)" : ""));
    } else if (e.type == "send_failed") {
      print("  not sent (" + d.value("code", "") + ": " + d.value("msg", "") + "): "
            + d.value("body", ""));
    } else if (e.type == "queued") {
      print("  offline: kept (" + std::to_string(d.value("pending", size_t{0}))
            + " unsent), it goes out once back online");
    } else if (e.type == "error") {
      print("  " + error_text(d));
    } else if (e.type == "receipt") {
      print("[" + d.value("conv", "") + "] " + d.value("user", "") + " has read up to #"
            + std::to_string(d.value("seq", uint64_t{0})));
    } else if (e.type == "typing") {
      print("[" + d.value("conv", "") + "] " + d.value("user", "") + " is typing");
    } else if (e.type == "presence") {
      print(d.value("user", "") + " is " + (d.value("online", false) ? "online" : "offline"));
    } else if (e.type == "mention") {
      print("[" + d.value("conv", "") + " #" + std::to_string(d.value("seq", uint64_t{0})) + "] "
            + d.value("from", "") + " mentioned you (/to " + d.value("conv", "") + ", /history)");
    } else if (e.type == "mute") {
      print("[" + d.value("conv", "") + "] " + (d.value("on", false) ? "muted" : "unmuted")
            + " on another device");
    } else if (e.type == "read") {
      print("[" + d.value("conv", "") + "] read up to #"
            + std::to_string(d.value("seq", uint64_t{0})) + " on another device");
    }
  }

  void state(const json& d) {
    auto s = d.value("state", "");
    if (s == "online") {
      auto node = d.value("node", "");
      print(d.value("again", false) ? "back online (node " + node + ")"
                                    : "connected as " + client_.options().user + "/"
                                        + client_.options().device + " on node " + node);
      if (auto n = d.value("resending", size_t{0}))
        print("  resending " + std::to_string(n) + " unsent message(s)");
      if (!greeted_) {
        greeted_ = true;
        if (!client_.conv().empty())
          print("talking in " + client_.conv());
        client_.request({{"t", "unread"}}, [](const json& r) {
          if (auto n = r.value("total", uint64_t{0}))
            print("  " + std::to_string(n) + " unread (/convs lists them)");
        });
      }
    } else if (s == "offline") {
      auto code = d.value("code", 0);
      std::string why = code ? "connection closed (code " + std::to_string(code) + ")"
                             : d.value("reason", "");
      print("offline: " + why + "; reconnecting in " + seconds(d.value("retry_in_ms", int64_t{0})));
    } else if (s == "closed") {
      print("closed: " + d.value("reason", "") + "; not reconnecting");
    }
  }

  std::string me_;
  bool greeted_ = false;   // worker thread only
  chat::chat_client client_;
};

} // namespace

int main(int argc, char** argv) {
  flags f;
  if (auto problem = parse_flags(argc, argv, f)) {
    std::cerr << "chat_cli: " << *problem << " (chat_cli --help tells more)\n";
    return 2;
  }
  if (f.help) {
    std::cout << help_text;
    return 0;
  }
  std::unique_ptr<cli> c;
  try {
    c = std::make_unique<cli>(f);
  } catch (const std::exception& e) {
    std::cerr << "chat_cli: " << e.what() << "\n";
    return 1;
  }
  print("chat_cli: " + f.user + "/" + f.device + " to ws://" + f.host + ":"
        + std::to_string(f.port) + "/ws (state " + f.state + "; /help lists the commands)");
  c->start();

  // stdin read by hand, with poll: the loop also notices a session that
  // closed for good (replaced, auth refused) while nobody types.
  std::string buf;
  bool quit = false, eof = false;
  while (!quit && !eof && !c->client().closed()) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int r = poll(&p, 1, 200);
    if (r < 0 && errno != EINTR)
      break;
    if (r <= 0)
      continue;
    char tmp[4096];
    auto n = ::read(STDIN_FILENO, tmp, sizeof tmp);
    if (n <= 0) {
      eof = n == 0 || errno != EINTR;
      if (eof && !buf.empty())
        quit = !c->line(buf);
      continue;
    }
    buf.append(tmp, static_cast<size_t>(n));
    for (auto nl = buf.find('\n'); nl != std::string::npos && !quit; nl = buf.find('\n')) {
      auto l = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      quit = !c->line(l);
    }
  }
  bool closed = c->client().closed();
  // Give lines just typed a moment to be acked before leaving.
  if (!closed && c->client().pending() > 0)
    c->client().wait_outbox_empty(std::chrono::seconds(3));
  auto left = c->client().pending();
  c->client().stop();
  if (left > 0)
    print(std::to_string(left) + " unsent message(s) kept in " + f.state
          + "; they go out at the next start");
  print("bye");
  return closed ? 1 : 0;
}
