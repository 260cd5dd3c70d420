// examples/chat_cli, the real binary in a child process (stdin and stdout
// on pipes) against the real engine: its flags, a chat both ways with a
// ws_client peer, commands never sent as messages, a SIGKILLed engine it
// reconnects to by itself (a line typed meanwhile delivered exactly once),
// and a restart on the same state file that does not replay the inbox and
// keeps unsent lines.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/cluster.hpp"
#include "tests/support/engine_process.hpp"

#ifndef CHAT_CLI_BINARY
#error "CHAT_CLI_BINARY must name the chat_cli executable"
#endif

using namespace imengine::testing;
using steady = std::chrono::steady_clock;

namespace {

// chat_cli with its stdin and (stdout + stderr) on pipes.
class cli_process {
public:
  explicit cli_process(std::vector<std::string> args) {
    int in[2], out[2];
    REQUIRE(pipe(in) == 0);
    REQUIRE(pipe(out) == 0);
    args.insert(args.begin(), CHAT_CLI_BINARY);
    std::vector<char*> argv;   // built before fork: the child must not allocate
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      dup2(out[1], STDERR_FILENO);
      // Nothing else: an inherited client socket or pipe would outlive its owner.
      close_range(3, ~0u, 0);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }

  ~cli_process() {
    if (in_ >= 0)
      close(in_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }

  void type(const std::string& line) {
    std::string s = line + "\n";
    REQUIRE(write(in_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }

  // Waits until the output after the cursor holds `text`, and moves the
  // cursor past it. False when the deadline passes or the output ends first.
  bool wait_output(const std::string& text, std::chrono::milliseconds deadline = 20s) {
    return wait_output_since(cursor_, text, deadline);
  }
  // The same, searching from an earlier mark(): for lines whose order
  // among themselves is not fixed (an ack and the push of the same message).
  bool wait_output_since(size_t mark, const std::string& text,
                         std::chrono::milliseconds deadline = 20s) {
    auto until = steady::now() + deadline;
    while (true) {
      auto pos = out_buf_.find(text, mark);
      if (pos != std::string::npos) {
        cursor_ = std::max(cursor_, pos + text.size());
        return true;
      }
      if (eof_ || !read_some(until))
        return false;
    }
  }

  // Reads the output to its end, then reaps: the exit code (-1: not in time).
  int wait_exit(std::chrono::milliseconds deadline = 20s) {
    auto until = steady::now() + deadline;
    while (!eof_)
      if (!read_some(until))
        return -1;
    int status = 0;
    waitpid(pid_, &status, 0);   // stdout closed: the process is ending
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  const std::string& output() const { return out_buf_; }
  size_t mark() const { return cursor_; }

  size_t count(const std::string& text) const {
    size_t n = 0;
    for (auto pos = out_buf_.find(text); pos != std::string::npos;
         pos = out_buf_.find(text, pos + text.size()))
      ++n;
    return n;
  }

private:
  // One read, waiting until `until`; false on timeout.
  bool read_some(steady::time_point until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    if (left.count() <= 0)
      return false;
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return false;
    char buf[4096];
    auto n = read(out_, buf, sizeof buf);
    if (n <= 0)
      eof_ = true;
    else
      out_buf_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string out_buf_;
  size_t cursor_ = 0;
  bool eof_ = false;
};

// Runs chat_cli with stdin closed at once; returns (exit code, output).
std::pair<int, std::string> run(std::vector<std::string> args) {
  cli_process p(std::move(args));
  auto code = p.wait_exit();
  return {code, p.output()};
}

// The bodies of a conversation's messages, oldest first.
std::vector<std::string> bodies(imengine::net::ws_client& c, const std::string& conv) {
  std::vector<std::string> out;
  for (auto& m : whole_history(c, conv))
    out.push_back(m.value("body", ""));
  return out;
}

size_t count_of(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<size_t>(std::count(v.begin(), v.end(), s));
}

json send_and_ack(imengine::net::ws_client& c, const std::string& conv, const std::string& cmid,
                  const std::string& body) {
  auto ack = c.request(send_frame(conv, cmid, body));
  REQUIRE(ack.value("t", "") == "ack");
  return ack;
}

const std::string dm = "dm:alice:bob";

} // namespace

TEST_CASE("flags: --help, unknown flags, stray words and bad ports") {
  signal(SIGPIPE, SIG_IGN);
  auto [code, out] = run({"--help"});
  CHECK(code == 0);
  for (auto flag : {"--user=", "--device=", "--host=", "--port=", "--token=", "--state=", "--help"})
    CHECK_MESSAGE(out.find(flag) != std::string::npos, flag);
  for (auto cmd : {"/to", "/join", "/leave", "/group", "/add", "/history", "/convs", "/unread",
                   "/read", "/recall", "/edit", "/mute", "/who", "/help", "/quit", "Example"})
    CHECK_MESSAGE(out.find(cmd) != std::string::npos, cmd);

  auto bad = [](std::vector<std::string> args, const std::string& named) {
    auto [code, out] = run(std::move(args));
    CHECK(code == 2);
    CHECK_MESSAGE(out.find(named) != std::string::npos, out);
  };
  bad({"--user=alice", "--bogus=1"}, "--bogus");
  bad({"--user=alice", "--verbose"}, "--verbose");
  bad({"--user=alice", "stray"}, "stray");
  bad({"--user=alice", "--port=abc"}, "--port=abc");
  bad({"--user=alice", "--port=70000"}, "--port=70000");
  bad({"--user=alice", "--port=0"}, "--port=0");
  bad({"--user=alice", "--port="}, "--port");
  bad({}, "--user");
  bad({"--user=not valid"}, "--user");
}

TEST_CASE("chat both ways, reconnect after SIGKILL, exactly once, no replay on restart") {
  signal(SIGPIPE, SIG_IGN);
  temp_dir data, home;
  // An explicit port, so that the restarted engine is where the CLI reconnects.
  auto port = free_ports(1).at(0);
  engine_process engine(data.str(), {"--port=" + std::to_string(port)});
  REQUIRE(engine.port() == port);
  const std::vector<std::string> cli_args{"--user=alice", "--port=" + std::to_string(port),
                                          "--state=" + home.str() + "/alice.json"};

  cli_process alice(cli_args);
  REQUIRE(alice.wait_output("connected as alice/cli"));
  auto bob = engine.login("bob", "ws");

  // Both ways.
  alice.type("/to bob");
  REQUIRE(alice.wait_output("talking in " + dm));
  alice.type("hello bob");
  auto got = bob->wait_for([](const json& f) {
    return f.value("t", "") == "msg" && f.value("body", "") == "hello bob";
  });
  CHECK(got["from"] == "alice");
  CHECK(got["conv"] == dm);
  bob->send({{"t", "ack"}, {"iseq", got["iseq"]}});
  send_and_ack(*bob, dm, "b-1", "hi alice");
  REQUIRE(alice.wait_output("[" + dm + " #2] bob: hi alice"));

  // Commands are commands: answered, never sent as messages.
  alice.type("/unread");
  REQUIRE(alice.wait_output(dm + ": 1"));
  alice.type("/nonsense here");
  REQUIRE(alice.wait_output("unknown command /nonsense"));
  alice.type("");
  alice.type("/history 5");
  REQUIRE(alice.wait_output("-- history of " + dm + " (2) --"));
  REQUIRE(alice.wait_output("-- end of history --"));

  // The engine dies; the CLI notices, keeps the line typed meanwhile and
  // sends it once the engine is back, without being told.
  engine.kill9();
  bob.reset();
  REQUIRE(alice.wait_output("reconnecting in"));
  alice.type("typed while offline");
  REQUIRE(alice.wait_output("offline: kept (1 unsent)"));
  engine.restart();
  REQUIRE(engine.port() == port);
  REQUIRE(alice.wait_output("back online", 60s));
  auto online = alice.mark();
  REQUIRE(alice.wait_output_since(online, "sent #3"));
  REQUIRE(alice.wait_output_since(online, "[" + dm + " #3] alice: typed while offline"));

  bob = engine.login("bob", "ws");
  auto history = bodies(*bob, dm);
  CHECK(count_of(history, "typed while offline") == 1);
  CHECK(count_of(history, "hello bob") == 1);
  for (auto& b : history)
    CHECK_MESSAGE(b.rfind("/", 0) != 0, b);   // no command went out as a message
  CHECK(history.size() == 3);

  // A push after the reconnect, and nothing shown twice before it.
  send_and_ack(*bob, dm, "b-2", "after the restart");
  REQUIRE(alice.wait_output("[" + dm + " #4] bob: after the restart"));
  // Pushes print at the start of a line (history lines are indented).
  CHECK(alice.count("\n[" + dm + " #3] alice: typed while offline") == 1);
  CHECK(alice.count("\n[" + dm + " #2] bob: hi alice") == 1);
  CHECK(alice.count("] alice: typed while offline") == 1);
  alice.type("/quit");
  CHECK(alice.wait_exit() == 0);

  // A second start on the same state: only what came since, in the same conversation.
  send_and_ack(*bob, dm, "b-3", "while alice was away");
  {
    cli_process again(cli_args);
    REQUIRE(again.wait_output("connected as alice/cli"));
    REQUIRE(again.wait_output("bob: while alice was away"));
    CHECK(again.output().find("talking in " + dm) != std::string::npos);
    for (auto old : {"hello bob", "hi alice", "typed while offline", "after the restart"})
      CHECK_MESSAGE(again.output().find(old) == std::string::npos, old);
    again.type("still here");
    auto m = bob->wait_for([](const json& f) {
      return f.value("t", "") == "msg" && f.value("body", "") == "still here";
    });
    CHECK(m["from"] == "alice");
    again.type("/quit");
    CHECK(again.wait_exit() == 0);
  }

  // Unsent lines survive a restart of the CLI itself.
  engine.kill9();
  bob.reset();
  {
    cli_process offline(cli_args);
    REQUIRE(offline.wait_output("reconnecting in"));
    offline.type("kept across restarts");
    REQUIRE(offline.wait_output("offline: kept (1 unsent)"));
    offline.type("/quit");
    REQUIRE(offline.wait_output("1 unsent message(s) kept"));
    CHECK(offline.wait_exit() == 0);
  }
  engine.restart();
  REQUIRE(engine.port() == port);
  {
    cli_process later(cli_args);
    REQUIRE(later.wait_output("resending 1 unsent message(s)"));
    REQUIRE(later.wait_output("sent #"));
    later.type("/quit");
    CHECK(later.wait_exit() == 0);
  }
  bob = engine.login("bob", "ws");
  CHECK(count_of(bodies(*bob, dm), "kept across restarts") == 1);
}
