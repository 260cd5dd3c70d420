// Actor plugins through the real binary: the example plugins as built by
// the normal build, and a deliberately broken one (tests/plugins/), loaded
// with --plugins, over real WebSockets and real HTTP on 127.0.0.1.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "engine/cluster.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

std::string plugins_flag(std::vector<std::string> paths) {
  std::string s = "--plugins=[";
  for (size_t i = 0; i < paths.size(); ++i)
    s += (i ? ",\"" : "\"") + paths[i] + "\"";
  return s + "]";
}

// A --plugin-config file in `dir`.
std::string config_file(const temp_dir& dir, const json& cfg) {
  auto path = dir.str() + "/plugins.json";
  std::ofstream(path) << cfg.dump();
  return "--plugin-config=" + path;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

// The file's lines once it holds at least n, or as they are at the deadline.
std::vector<std::string> wait_lines(const std::string& path, size_t n,
                                    std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  auto lines = lines_of(path);
  while (lines.size() < n && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);   // poll interval
    lines = lines_of(path);
  }
  return lines;
}

auto is_msg_in(const std::string& conv) {
  return [conv](const json& f) { return f.value("t", "") == "msg" && f.value("conv", "") == conv; };
}

json group_create(const std::string& conv, std::vector<std::string> members) {
  return json{{"t", "group_create"}, {"conv", conv}, {"members", members}};
}

// The non-system messages of a conversation's history, checking that the
// whole timeline's seqs are gapless from 1.
std::vector<json> user_messages(imengine::net::ws_client& c, const std::string& conv) {
  auto all = whole_history(c, conv);
  std::vector<json> out;
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i]["seq"] == i + 1);
    if (all[i]["type"] != "system")
      out.push_back(all[i]);
  }
  return out;
}

// The value of one plugin counter on /metrics, 0 when absent.
uint64_t plugin_counter(uint16_t port, const std::string& name, const std::string& plugin,
                        const std::string& hook) {
  auto body = http_get(port, "/metrics").second;
  auto key = "imengine_plugin_" + name + "_total{plugin=\"" + plugin + "\",hook=\"" + hook + "\"} ";
  auto pos = body.find(key);
  return pos == std::string::npos ? 0 : std::stoull(body.substr(pos + key.size()));
}

// One shell word.
std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

// Runs the engine with `flags` (shell words) until it exits, at most 20 s;
// its exit code and what it wrote to stderr.
std::pair<int, std::string> run_to_exit(const temp_dir& dir, const std::string& flags) {
  auto err = dir.str() + "/stderr";
  auto cmd = "timeout 20 " + engine_binary() + " --port=0 --data=" + dir.str()
             + "/data " + flags + " >/dev/null 2>" + err;
  auto status = std::system(cmd.c_str());
  std::ifstream in(err);
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

const std::string misbehaving = MISBEHAVING_PLUGIN;

} // namespace

TEST_CASE("echo_bot answers a dm with echo: <body>, from echo, at the next seq") {
  temp_dir dir;
  engine_process engine(dir.str(), {plugins_flag({ECHO_BOT_PLUGIN})});
  auto alice = engine.login("alice", "phone");
  auto ack = alice->request(send_frame("dm:alice:echo", "c1", "hello"));
  REQUIRE(ack["t"] == "ack");
  CHECK(ack["seq"] == 1);
  auto reply = alice->wait_for([](const json& f) {
    return f.value("t", "") == "msg" && f.value("from", "") == "echo";
  });
  CHECK(reply["conv"] == "dm:alice:echo");
  CHECK(reply["seq"] == 2);
  CHECK(reply["body"] == "echo: hello");
  // Not for other dms, nor for its own messages: the timeline holds two.
  auto bob_ack = alice->request(send_frame("dm:alice:bob", "c2", "to bob"));
  CHECK(bob_ack["seq"] == 1);
  auto msgs = user_messages(*alice, "dm:alice:echo");
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[1]["from"] == "echo");
  CHECK(whole_history(*alice, "dm:alice:bob").size() == 1);
}

TEST_CASE("word_filter rejects a filtered word (any case): nothing stored, no seq used") {
  temp_dir dir;
  engine_process engine(dir.str(),
                        {plugins_flag({WORD_FILTER_PLUGIN}),
                         config_file(dir, {{"word_filter", {{"words", {"spam", "Scam"}}}}})});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  auto refused = alice->request(send_frame("dm:alice:bob", "c1", "buy SPAM now"));
  CHECK(refused["t"] == "error");
  CHECK(refused["code"] == "rejected");
  CHECK(refused["msg"] == "the message contains a filtered word");
  auto scam = alice->request(send_frame("dm:alice:bob", "c2", "no scam here"));
  CHECK(scam["code"] == "rejected");
  auto ok = alice->request(send_frame("dm:alice:bob", "c3", "hello"));
  REQUIRE(ok["t"] == "ack");
  CHECK(ok["seq"] == 1);
  CHECK(bob->wait_for(is_msg_in("dm:alice:bob"))["body"] == "hello");
  auto msgs = user_messages(*bob, "dm:alice:bob");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]["body"] == "hello");
  // The same cmid may be sent again with a clean body: it was never stored.
  auto again = alice->request(send_frame("dm:alice:bob", "c1", "buy bread now"));
  CHECK(again["seq"] == 2);
  CHECK(again.value("dup", false) == false);
  CHECK(plugin_counter(engine.port(), "rejected", "word_filter", "before_persist") == 2);
}

TEST_CASE("a before_persist rewrite is what is stored and pushed") {
  temp_dir dir;
  engine_process engine(
    dir.str(), {plugins_flag({misbehaving}),
                config_file(dir, {{"misbehaving", {{"mode", "rewrite"}, {"convs", {"g:"}}}}})});
  auto alice = engine.login("alice", "phone");
  auto bob = engine.login("bob", "phone");
  REQUIRE(alice->request(group_create("g:team", {"bob"}))["t"] == "ok");
  REQUIRE(alice->request(send_frame("g:team", "c1", "hi"))["t"] == "ack");
  auto push = bob->wait_for([](const json& f) {
    return f.value("t", "") == "msg" && f.value("type", "") == "text";
  });
  CHECK(push["body"] == "rewritten: hi");
  CHECK(push["ex"] == json{{"by", "misbehaving"}});
  auto msgs = user_messages(*bob, "g:team");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]["body"] == "rewritten: hi");
  // dms are not registered: untouched.
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c2", "plain"))["t"] == "ack");
  CHECK(user_messages(*bob, "dm:alice:bob").at(0)["body"] == "plain");
}

TEST_CASE("a plugin that crashes every other call: fail-open lets all through, restarted") {
  temp_dir dir;
  engine_process engine(
    dir.str(), {plugins_flag({misbehaving}),
                config_file(dir, {{"misbehaving",
                                   {{"mode", "crash"}, {"convs", {"g:bad"}}, {"policy", "fail_open"}}}})});
  auto alice = engine.login("alice", "phone");
  REQUIRE(alice->request(group_create("g:bad", {"bob"}))["t"] == "ok");
  constexpr int n = 8;
  for (int i = 0; i < n; ++i) {
    auto ack = alice->request(send_frame("g:bad", "c" + std::to_string(i), "m" + std::to_string(i)));
    REQUIRE(ack["t"] == "ack");
    CHECK(ack["seq"] == i + 2);
  }
  auto msgs = user_messages(*alice, "g:bad");
  REQUIRE(msgs.size() == n);   // each once, in order
  for (int i = 0; i < n; ++i)
    CHECK(msgs[i]["body"] == "m" + std::to_string(i));
  CHECK(plugin_counter(engine.port(), "restarts", "misbehaving", "before_persist") >= 1);
  CHECK(plugin_counter(engine.port(), "failures", "misbehaving", "before_persist") >= n / 2);
  // Still answering after its crashes: a later call reaches a live actor.
  CHECK(alice->request(send_frame("g:bad", "last", "after"))["seq"] == n + 2);
}

TEST_CASE("a plugin that crashes every other call: fail-closed rejects exactly what is not stored") {
  temp_dir dir;
  engine_process engine(
    dir.str(),
    {plugins_flag({misbehaving}),
     config_file(dir, {{"misbehaving",
                        {{"mode", "crash"}, {"convs", {"g:bad"}}, {"policy", "fail_closed"}}}})});
  auto alice = engine.login("alice", "phone");
  REQUIRE(alice->request(group_create("g:bad", {"bob"}))["t"] == "ok");
  REQUIRE(alice->request(group_create("g:good", {"bob"}))["t"] == "ok");
  constexpr int n = 8;
  std::vector<std::string> acked;
  int rejected = 0;
  for (int i = 0; i < n; ++i) {
    auto body = "m" + std::to_string(i);
    auto r = alice->request(send_frame("g:bad", "c" + std::to_string(i), body));
    if (r["t"] == "ack") {
      acked.push_back(body);
    } else {
      CHECK(r["code"] == "rejected");
      rejected++;
    }
    // A conversation the plugin is not registered for never notices.
    CHECK(alice->request(send_frame("g:good", "g" + std::to_string(i), body))["t"] == "ack");
  }
  CHECK(rejected >= 1);
  CHECK(acked.size() >= 1);
  CHECK(acked.size() + rejected == n);
  auto msgs = user_messages(*alice, "g:bad");
  REQUIRE(msgs.size() == acked.size());
  for (size_t i = 0; i < acked.size(); ++i)
    CHECK(msgs[i]["body"] == acked[i]);
  CHECK(user_messages(*alice, "g:good").size() == n);
}

TEST_CASE("a plugin that hangs past its deadline: the policy applies, other conversations go on") {
  for (std::string policy : {"fail_open", "fail_closed"}) {
  CAPTURE(policy);
  temp_dir dir;
  engine_process engine(
    dir.str(), {plugins_flag({misbehaving}),
                config_file(dir, {{"misbehaving",
                                   {{"mode", "hang"}, {"sleep_ms", 3000}, {"deadline_ms", 300},
                                    {"convs", {"g:bad"}}, {"policy", policy}}}})});
  auto alice = engine.login("alice", "phone");
  REQUIRE(alice->request(group_create("g:bad", {"bob"}))["t"] == "ok");
  REQUIRE(alice->request(group_create("g:good", {"bob"}))["t"] == "ok");
  REQUIRE(alice->request(send_frame("g:bad", "b0", "first"))["t"] == "ack");   // call 0: prompt
  // Call 1 sleeps 3 s. The send to g:good, sent after it, is answered
  // first: nothing waits for the plugin but its own conversation.
  alice->send(json{{"t", "send"}, {"req", 101}, {"conv", "g:bad"}, {"cmid", "b1"}, {"body", "slow"}});
  alice->send(json{{"t", "send"}, {"req", 102}, {"conv", "g:good"}, {"cmid", "g1"}, {"body", "quick"}});
  auto first = alice->wait_for([](const json& f) { return f.contains("req") && f["req"] >= 101; });
  CHECK(first["req"] == 102);
  CHECK(first["t"] == "ack");
  auto slow = alice->wait_for([](const json& f) { return f.value("req", 0) == 101; });
  // A send behind the hanging call waits its turn (the plugin is still
  // asleep when its deadline passes: the policy applies to it too).
  auto after = alice->request(send_frame("g:bad", "b2", "after"), 10s);
  std::vector<std::string> want{"first"};
  if (policy == "fail_open") {
    CHECK(slow["t"] == "ack");
    CHECK(slow["seq"] == 3);
    want.push_back("slow");
  } else {
    CHECK(slow["code"] == "rejected");
  }
  if (after["t"] == "ack")
    want.push_back("after");
  else
    CHECK(after["code"] == "rejected");
  // Once the plugin has woken up and answered late, nothing changes: the
  // late verdicts are dropped; the history holds exactly what was acked.
  auto awake = alice->request(send_frame("g:bad", "b3", "awake"), 10s);
  if (awake["t"] == "ack")
    want.push_back("awake");
  std::vector<std::string> got;
  for (const auto& m : user_messages(*alice, "g:bad"))
    got.push_back(m["body"]);
  CHECK(got == want);
  CHECK(plugin_counter(engine.port(), "failures", "misbehaving", "before_persist") >= 1);
  }
}

TEST_CASE("offline_push writes one line per recipient with no device online") {
  temp_dir dir;
  auto file = dir.str() + "/push.jsonl";
  engine_process engine(dir.str(), {plugins_flag({OFFLINE_PUSH_PLUGIN}),
                                    config_file(dir, {{"offline_push", {{"file", file}}}})});
  auto alice = engine.login("alice", "phone");
  auto presence = [](bool online) {
    return [online](const json& f) {
      return f.value("t", "") == "presence" && f["user"] == "bob" && f["online"] == online;
    };
  };
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c1", "are you there"))["t"] == "ack");
  alice->send(json{{"t", "presence_sub"}, {"users", {"bob"}}});   // a contact now
  alice->wait_for(presence(false));
  auto lines = wait_lines(file, 1);
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0])
        == json{{"user", "bob"}, {"conv", "dm:alice:bob"}, {"seq", 1}, {"from", "alice"}});
  {
    auto bob = engine.login("bob", "phone");
    REQUIRE(alice->request(send_frame("dm:alice:bob", "c2", "online now"))["t"] == "ack");
    bob->wait_for([](const json& f) { return f.value("t", "") == "msg" && f["seq"] == 2; });
  }
  // bob is gone again. The line for seq 3 comes after any for seq 2
  // would have: there is none.
  alice->wait_for(presence(false));
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c3", "bye"))["t"] == "ack");
  lines = wait_lines(file, 2);
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[1])["seq"] == 3);
  CHECK(json::parse(lines[1])["user"] == "bob");

  // A conversation bob muted calls no offline hook. The line for seq 5
  // (unmuted again) comes after any for seq 4 would have: there is none.
  auto set_mute = [&](bool on) {
    auto bob = engine.login("bob", "phone");
    REQUIRE(bob->request({{"t", "mute"}, {"conv", "dm:alice:bob"}, {"on", on}})["t"] == "ok");
  };
  set_mute(true);
  alice->wait_for(presence(false));
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c4", "muted"))["t"] == "ack");
  // c4 is copied to both inboxes (alice's is one) before bob comes back
  CHECK(inbox_of_at_least(*alice, 4).size() == 4);
  // ... but a message that mentions bob is the exception
  auto mention = send_frame("dm:alice:bob", "c5", "muted, but @bob");
  mention["mentions"] = {"bob"};
  REQUIRE(alice->request(mention)["t"] == "ack");
  lines = wait_lines(file, 3);
  REQUIRE(lines.size() == 3);
  CHECK(json::parse(lines[2])["seq"] == 5);
  CHECK(inbox_of_at_least(*alice, 5).size() == 5);
  set_mute(false);
  alice->wait_for(presence(false));
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c6", "unmuted"))["t"] == "ack");
  lines = wait_lines(file, 4);
  REQUIRE(lines.size() == 4);
  CHECK(json::parse(lines[3])["seq"] == 6);
}

TEST_CASE("session and after_persist hooks see connects, disconnects and every commit") {
  temp_dir dir;
  auto events = dir.str() + "/events.txt";
  engine_process engine(dir.str(),
                        {plugins_flag({misbehaving}),
                         config_file(dir, {{"misbehaving", {{"events", events}}}})});
  {
    auto alice = engine.login("alice", "phone");
    REQUIRE(alice->request(send_frame("dm:alice:bob", "c1", "one"))["t"] == "ack");
    REQUIRE(alice->request(send_frame("dm:alice:bob", "c2", "two"))["t"] == "ack");
    auto lines = wait_lines(events, 3);
    REQUIRE(lines.size() >= 3);
    CHECK(lines[0] == "connect alice phone");
    std::set<std::string> got(lines.begin() + 1, lines.end());
    CHECK(got.count("after dm:alice:bob 1 one") == 1);
    CHECK(got.count("after dm:alice:bob 2 two") == 1);
  }
  auto lines = wait_lines(events, 4);
  REQUIRE(lines.size() == 4);
  CHECK(lines[3] == "disconnect alice phone");
}

namespace {

// A local webhook endpoint: answers 500 to the first `fail_first` POSTs,
// 200 after; records every body. Stops by itself after 60 s.
class hook_server {
public:
  explicit hook_server(int fail_first) : fail_first_(fail_first) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~hook_server() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> g(mtx_);
    return bodies_;
  }
  std::vector<std::string> wait_bodies(size_t n) {
    auto until = std::chrono::steady_clock::now() + 15s;
    while (bodies().size() < n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(20ms);   // poll interval
    return bodies();
  }

private:
  void serve() {
    auto until = std::chrono::steady_clock::now() + 60s;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0)
        continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c >= 0)
        handle(c);
    }
  }
  void handle(int c) {
    std::string req;
    char buf[4096];
    size_t need = std::string::npos;
    while (req.size() < need) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0)
        break;
      auto n = recv(c, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      req.append(buf, static_cast<size_t>(n));
      auto end = req.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        auto cl = req.find("Content-Length: ");
        auto len = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
        need = end + 4 + len;
      }
    }
    auto end = req.find("\r\n\r\n");
    bool fail;
    {
      std::lock_guard<std::mutex> g(mtx_);
      bodies_.push_back(end == std::string::npos ? "" : req.substr(end + 4));
      fail = static_cast<int>(bodies_.size()) <= fail_first_;
    }
    std::string res = fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                           : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    send(c, res.data(), res.size(), MSG_NOSIGNAL);
    close(c);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  int fail_first_;
  std::atomic<bool> stop_{false};
  std::mutex mtx_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

} // namespace

TEST_CASE("webhook POSTs every committed message in order, retrying a failed POST") {
  temp_dir dir;
  hook_server endpoint(1);
  auto url = "http://127.0.0.1:" + std::to_string(endpoint.port()) + "/hook";
  engine_process engine(dir.str(), {plugins_flag({WEBHOOK_PLUGIN}),
                                    config_file(dir, {{"webhook", {{"url", url}, {"retries", 3}}}})});
  auto alice = engine.login("alice", "phone");
  for (int i = 1; i <= 3; ++i)
    REQUIRE(alice->request(send_frame("dm:alice:bob", "c" + std::to_string(i),
                                      "m" + std::to_string(i)))["t"]
            == "ack");
  auto bodies = endpoint.wait_bodies(4);
  REQUIRE(bodies.size() == 4);   // the first one twice: 500, then retried
  std::vector<uint64_t> seqs;
  for (const auto& b : bodies) {
    auto j = json::parse(b);
    CHECK(j["conv"] == "dm:alice:bob");
    CHECK(j["from"] == "alice");
    CHECK(j["body"] == "m" + std::to_string(j["seq"].get<uint64_t>()));
    CHECK(j["mid"].is_string());
    seqs.push_back(j["seq"]);
  }
  CHECK(seqs == std::vector<uint64_t>{1, 1, 2, 3});
}

TEST_CASE("in a cluster a conversation's hooks run on the node that owns it") {
  temp_dir cfg_dir;
  cluster_fixture cluster(2, {plugins_flag({WORD_FILTER_PLUGIN}),
                              config_file(cfg_dir, {{"word_filter", {{"words", {"spam"}}}}})});
  REQUIRE(cluster.wait_cluster_up());
  auto peers = imengine::parse_peers(cluster.peers_flag());
  REQUIRE(peers);
  imengine::cluster_map map("n1", *peers);
  std::string conv;
  for (int i = 0; conv.empty(); ++i)
    if (map.owner("g:t" + std::to_string(i)) == "n2")
      conv = "g:t" + std::to_string(i);
  auto alice = cluster.node(1).login("alice", "phone");   // her frames reach n1
  REQUIRE(alice->request(group_create(conv, {"bob"}))["t"] == "ok");
  auto refused = alice->request(send_frame(conv, "c1", "spam spam"));
  CHECK(refused["code"] == "rejected");
  CHECK(alice->request(send_frame(conv, "c2", "fine"))["seq"] == 2);
  CHECK(plugin_counter(cluster.node(2).port(), "rejected", "word_filter", "before_persist") == 1);
  CHECK(plugin_counter(cluster.node(2).port(), "calls", "word_filter", "before_persist") == 2);
  CHECK(plugin_counter(cluster.node(1).port(), "calls", "word_filter", "before_persist") == 0);
}

TEST_CASE("a plugin that cannot start stops the engine with a clear message") {
  temp_dir dir;
  SUBCASE("built against another API version") {
    auto [code, err] = run_to_exit(dir, quoted(plugins_flag({OTHER_API_PLUGIN})));
    CHECK(code == 1);
    CHECK(err.find("plugin API version 999; this engine has version 1") != std::string::npos);
  }
  SUBCASE("no such file") {
    auto [code, err] = run_to_exit(dir, quoted(plugins_flag({dir.str() + "/none.so"})));
    CHECK(code == 1);
    CHECK(err.find("none.so") != std::string::npos);
  }
  SUBCASE("its init refuses (word_filter with a bad word list)") {
    auto [code, err] = run_to_exit(
      dir, quoted(plugins_flag({WORD_FILTER_PLUGIN})) + " "
             + config_file(dir, {{"word_filter", {{"words", {1, 2}}}}}));
    CHECK(code == 1);
    CHECK(err.find("word_filter") != std::string::npos);
  }
  SUBCASE("a bad policy in --plugin-config") {
    auto [code, err] = run_to_exit(
      dir, quoted(plugins_flag({misbehaving})) + " "
             + config_file(dir, {{"misbehaving", {{"mode", "crash"}, {"policy", "maybe"}}}}));
    CHECK(code == 1);
    CHECK(err.find("policy must be fail_open or fail_closed") != std::string::npos);
  }
}
