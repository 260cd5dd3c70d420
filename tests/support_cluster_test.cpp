#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "tests/support/cluster.hpp"

using namespace imengine::testing;

namespace {

bool bindable(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

} // namespace

TEST_CASE("free_ports gives n distinct ports that can be bound") {
  CHECK(free_ports(0).empty());
  auto ports = free_ports(8);
  REQUIRE(ports.size() == 8);
  CHECK(std::set<uint16_t>(ports.begin(), ports.end()).size() == 8);
  for (auto p : ports) {
    CAPTURE(p);
    CHECK(p != 0);
    CHECK(bindable(p));
  }
}

TEST_CASE("engine_process::restart keeps the data dir and args") {
  temp_dir dir;
  engine_process e(dir.str(), {"--sync=full"});
  CHECK(e.data_dir() == dir.str());
  CHECK(e.args() == std::vector<std::string>{"--sync=full"});
  {
    auto alice = e.login("alice", "d1");
    auto ack = alice->request(send_frame("dm:alice:bob", "c1", "before restart"));
    REQUIRE(ack.value("t", "") == "ack");
  }
  e.kill9();
  CHECK_FALSE(e.running());
  e.restart();
  CHECK(e.running());
  auto alice = e.login("alice", "d1");
  auto history = whole_history(*alice, "dm:alice:bob");
  REQUIRE(history.size() == 1);
  CHECK(history[0]["body"] == "before restart");
  // Restarting a running engine kills it first.
  e.restart();
  CHECK(e.running());
  CHECK(whole_history(*e.login("bob", "d1"), "dm:alice:bob").size() == 1);
}
