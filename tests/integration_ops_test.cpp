// Operating the binary: --version and --help, flags refused with exit 2
// naming them, the insecure-start checks, the data directory lock, the
// token and backup subcommands, and the secret file flags.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <thread>

#include "tests/support/engine_process.hpp"

using namespace imengine::testing;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs the binary with `args` and checks it exits `code` naming `part`.
void refused(const std::string& args, int code, const std::string& part) {
  auto r = run_engine_command(args);
  CAPTURE(args);
  CAPTURE(r.output);
  CHECK(r.exit_code == code);
  CHECK(contains(r.output, part));
}

} // namespace

TEST_CASE("--version and --help: the engine's flags first") {
  auto v = run_engine_command("--version");
  CHECK(v.exit_code == 0);
  CHECK(v.output.rfind("imengine ", 0) == 0);
  auto h = run_engine_command("--help");
  CAPTURE(h.output);
  CHECK(h.exit_code == 0);
  auto host = h.output.find("--host=");
  auto caf = h.output.find("CAF's options");
  REQUIRE(host != std::string::npos);
  REQUIRE(caf != std::string::npos);
  CHECK(host < caf);
  for (auto flag : {"--rate-msgs=", "--jwt-max-ttl=", "--jwt-secret-file=", "--log-level=",
                    "--insecure=", "backup --data=DIR --to=PATH", "token --sub=USER"})
    CHECK(contains(h.output, flag));
}

TEST_CASE("unknown flags and stray words exit 2 naming them") {
  temp_dir dir;
  auto data = " --port=0 --data=" + dir.str();
  refused("--bogus=1" + data, 2, "'--bogus=1'");
  // CAF stops at a stray word and drops the flags after it: refused.
  refused("start" + data, 2, "'start'");
  refused("--port=abc --data=" + dir.str(), 2, "--port=abc");
  refused("--log-level=loud" + data, 2, "--log-level");
}

TEST_CASE("--auth=none off loopback needs --insecure; --auth=jwt needs a secret") {
  temp_dir dir;
  auto data = " --port=0 --data=" + dir.str();
  refused("--host=0.0.0.0" + data, 2, "--insecure");
  // With --insecure the check passes; the bad --node stops it before it
  // binds (tests listen on loopback only).
  refused("--host=0.0.0.0 --insecure --node=bad/name" + data, 2, "--node");
  refused("--host=0.0.0.0 --auth=jwt" + data, 2, "--jwt-secret");
  refused("--auth=jwt --jwt-secret=a --jwt-secret-file=/nonexistent" + data, 2, "not both");
  refused("--auth=jwt --jwt-secret-file=" + dir.str() + "/none" + data, 2, dir.str() + "/none");
}

TEST_CASE("a second engine on a data directory in use stops at start, naming it") {
  temp_dir dir;
  engine_process first(dir.str());
  auto alice = first.login("alice", "phone");
  REQUIRE(alice->request(send_frame("dm:alice:bob", "c1", "kept"))["seq"] == 1);
  refused("--port=0 --data=" + dir.str(), 1, dir.str() + ": in use by another engine");
  // the first one is undisturbed
  CHECK(alice->request(send_frame("dm:alice:bob", "c2", "still"))["seq"] == 2);
  // a directory that cannot be created is named too
  std::ofstream(dir.str() + "/file") << "x";
  refused("--port=0 --data=" + dir.str() + "/file/sub", 1, dir.str() + "/file/sub");
}

TEST_CASE("imengine token logs a client in to an engine with --jwt-secret-file") {
  temp_dir dir;
  auto secret = dir.str() + "/secret";
  std::ofstream(secret) << "0123456789abcdef\n";
  auto t = run_engine_command("token --sub=alice --ttl=600 --jwt-secret-file=" + secret);
  REQUIRE(t.exit_code == 0);
  auto token = t.output.substr(0, t.output.find('\n'));
  engine_process engine(dir.str() + "/data", {"--auth=jwt", "--jwt-secret-file=" + secret});
  auto c = engine.connect();
  auto ok = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "d"}, {"token", token}});
  CHECK(ok["t"] == "auth_ok");
  auto other = engine.connect();
  auto refused = other->request({{"t", "auth"}, {"user", "bob"}, {"device", "d"}, {"token", token}});
  CHECK(refused["code"] == "unauthorized");
  CHECK(run_engine_command("token --sub=alice").exit_code == 2);   // no secret
  CHECK(run_engine_command("token --sub=alice --ttl=-1 --jwt-secret=s").exit_code == 2);
  CHECK(run_engine_command("token --sub=alice --jwt-secret=s --what=1").exit_code == 2);
  CHECK(run_engine_command("token --sub=alice --jwt-secret=s stray").exit_code == 2);
}

TEST_CASE("imengine backup copies a running node's data; a node starts on the copy") {
  temp_dir dir;
  auto data = dir.str() + "/live";
  auto copy = dir.str() + "/copy";
  engine_process engine(data);
  auto alice = engine.login("alice", "phone");
  for (int i = 1; i <= 20; ++i)
    REQUIRE(alice->request(send_frame("dm:alice:bob", "c" + std::to_string(i),
                                      "m" + std::to_string(i)))["seq"] == i);
  auto b = run_engine_command("backup --data=" + data + " --to=" + copy);
  CAPTURE(b.output);
  REQUIRE(b.exit_code == 0);
  // the engine keeps serving; the copy is refused as a target now
  CHECK(alice->request(send_frame("dm:alice:bob", "c21", "after"))["seq"] == 21);
  CHECK(run_engine_command("backup --data=" + data + " --to=" + copy).exit_code == 1);
  CHECK(run_engine_command("backup --data=" + dir.str() + "/none --to=" + dir.str() + "/x")
          .exit_code
        == 1);
  CHECK(run_engine_command("backup --data=" + data).exit_code == 2);   // no --to
  engine_process restored(copy);
  auto bob = restored.login("bob", "phone");
  auto h = whole_history(*bob, "dm:alice:bob");
  REQUIRE(h.size() == 20);
  for (int i = 0; i < 20; ++i)
    CHECK(h[i]["body"] == "m" + std::to_string(i + 1));
  CHECK(inbox_of_at_least(*bob, 20).size() == 20);
}

TEST_CASE("a graceful stop answers every send it committed before it closes (1001)") {
  temp_dir dir;
  engine_process engine(dir.str());
  auto alice = engine.login("alice", "phone");
  // Pipelined sends, then SIGTERM while they stream in.
  const int n = 3000;
  for (int i = 0; i < n; ++i)
    alice->send(send_frame("dm:alice:bob", "c" + std::to_string(i), "c" + std::to_string(i)));
  alice->wait_for(is_type("ack"), 10000ms);   // the stream is under way
  std::thread stopper([&] { engine.terminate(15000ms); });
  std::set<std::string> acked;
  while (auto f = alice->next(15000ms))
    if ((*f)["t"] == "ack")
      acked.insert((*f)["cmid"].get<std::string>());
  stopper.join();
  CHECK(alice->close_code() == 1001);
  // Restarted, the store holds exactly what was acked: no committed
  // message went unanswered.
  engine.restart();
  auto bob = engine.login("bob", "phone");
  std::set<std::string> stored;
  for (const auto& m : whole_history(*bob, "dm:alice:bob"))
    stored.insert(m["body"].get<std::string>());   // the body is the cmid
  MESSAGE(acked.size() << " of " << n << " acked before the stop (first ack not counted)");
  CHECK(stored.size() == acked.size() + 1);
  for (const auto& c : acked)
    CHECK(stored.count(c) == 1);
}

TEST_CASE("the shipped example config starts a node with its limits") {
  temp_dir dir;
  auto secret = dir.str() + "/secret";
  std::ofstream(secret) << "an example secret of some length\n";
  // Where the example points at system paths, the command line overrides.
  engine_process engine(dir.str() + "/data", {"--config-file=" IMENGINE_EXAMPLE_CONFIG,
                                              "--jwt-secret-file=" + secret});
  auto t = run_engine_command("token --sub=alice --ttl=600 --jwt-secret-file=" + secret);
  REQUIRE(t.exit_code == 0);
  auto token = t.output.substr(0, t.output.find('\n'));
  auto c = engine.connect();
  auto ok = c->request({{"t", "auth"}, {"user", "alice"}, {"device", "d"}, {"token", token}});
  REQUIRE(ok["t"] == "auth_ok");
  CHECK(ok["node"] == "n1");
  // auth=jwt from the file: no token, no login
  auto other = engine.connect();
  CHECK(other->request({{"t", "auth"}, {"user", "bob"}, {"device", "d"}})["code"]
        == "unauthorized");
  // rate-burst = 50 from the file: a batch of 51 is over it
  json items = json::array();
  for (int i = 0; i < 51; ++i)
    items.push_back({{"cmid", "b" + std::to_string(i)}, {"body", "x"}});
  auto batch = c->request({{"t", "send_batch"}, {"conv", "dm:alice:bob"}, {"msgs", items}});
  CHECK(batch["code"] == "rate_limited");
  // and the engine listened where the command line said
  CHECK(engine.port() != 8080);
}
