// Cluster links over TLS (caf-openssl, mutual certificates) through the
// real binary: a CA and node certificates made with the openssl CLI in a
// temp dir, two nodes on 127.0.0.1 that carry a dm over TLS and link again
// after either is killed and restarted, a node whose
// certificate another CA signed kept out, and the start-up refusals
// (non-loopback cluster without TLS, partial or bad TLS flags).
//
// Owners are computed with cluster_map over the node names, so that the dm
// really crosses the nodes it says.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <thread>

#include "engine/cluster.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/pki.hpp"

using namespace imengine::testing;
using std::chrono::steady_clock;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The cluster's PKI: ca.pem signs n1..n3; rogue-ca.pem signs rogue.pem.
// rogue-bundle.pem trusts both CAs, so that a rogue node accepts the good
// nodes' certificates and it is the good side that must refuse the rogue's.
struct cluster_pki : pki {
  cluster_pki() {
    make_ca("ca", "imengine test cluster CA");
    make_ca("rogue-ca", "another CA");
    for (auto name : {"n1", "n2", "n3"})
      make_cert(name, "ca");
    make_cert("rogue", "rogue-ca");
    write("rogue-bundle.pem", read("rogue-ca.pem") + read("ca.pem"));
    write("not-pem.pem", "this is not a certificate\n");
  }

  // The TLS flags of a node with certificate `cert` trusting `ca`.
  std::vector<std::string> flags(const std::string& cert, const std::string& ca = "ca") const {
    return {"--cluster-cert=" + path(cert + ".pem"), "--cluster-key=" + path(cert + ".key"),
            "--cluster-ca=" + path(ca + ".pem")};
  }
  std::string flag_line(const std::string& cert, const std::string& ca = "ca") const {
    std::string out;
    for (auto& f : flags(cert, ca))
      out += " " + f;
    return out;
  }
};

// The owner of a user or conversation among `nodes` (names only matter).
std::string owner_among(const std::vector<std::string>& nodes, const std::string& key) {
  std::vector<imengine::peer> peers;
  uint16_t port = 1;
  for (auto& n : nodes)
    peers.push_back({n, "127.0.0.1", port++});
  return imengine::cluster_map(nodes.front(), peers).owner(key);
}

std::string dm(const std::string& a, const std::string& b) {
  return a < b ? "dm:" + a + ":" + b : "dm:" + b + ":" + a;
}

// The first `prefix<i>` that `ok` accepts; fails the case if none does.
std::string first_name(const std::string& prefix, const std::function<bool(const std::string&)>& ok) {
  for (int i = 0; i < 10000; ++i)
    if (auto name = prefix + std::to_string(i); ok(name))
      return name;
  FAIL("no name " << prefix << "<i> fits");
  return {};
}

// Polls node k's failed dials to `peer` until at least `n` more than
// `since` have been counted; false at the deadline.
bool wait_dial_failures(cluster_fixture& cl, size_t k, const std::string& peer, uint64_t since,
                        uint64_t n, std::chrono::milliseconds deadline = 30000ms) {
  auto until = steady_clock::now() + deadline;
  auto series = peer_series("imengine_cluster_dial_failures_total", peer);
  for (;;) {
    if (metric(cl.node(k).port(), series).value_or(0) >= since + n)
      return true;
    if (steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(50ms);   // polling interval, not a guess at a duration
  }
}

// What GET /cluster on node k says of `peer` ("up"), or nullopt if absent.
std::optional<bool> peer_up(cluster_fixture& cl, size_t k, const std::string& peer) {
  auto [status, body] = http_get(cl.node(k).port(), "/cluster");
  REQUIRE(status == 200);
  auto j = json::parse(body, nullptr, false);
  REQUIRE(j.is_object());
  for (auto& p : j["peers"])
    if (p.value("node", "") == peer)
      return p.value("up", false);
  return std::nullopt;
}

void refused(const std::string& args, const std::string& part) {
  auto r = run_engine_command(args);
  CAPTURE(args);
  CAPTURE(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, part));
}

} // namespace

TEST_CASE("two nodes over TLS: a dm sent on node 1 reaches its peer on node 2") {
  cluster_pki certs;
  // Every hop crosses: alice (owned by n2) is on n1, bob (owned by n1) on n2.
  const std::vector<std::string> nodes{"n1", "n2"};
  auto alice_name = first_name("alice", [&](auto& u) { return owner_among(nodes, u) == "n2"; });
  auto bob_name = first_name("bob", [&](auto& u) { return owner_among(nodes, u) == "n1"; });
  auto conv = dm(alice_name, bob_name);
  INFO(alice_name << " on n1, " << bob_name << " on n2, " << conv << " owned by "
                  << owner_among(nodes, conv));

  cluster_fixture cl(2, {}, [&](size_t k) { return certs.flags(cluster_fixture::name(k)); });
  REQUIRE(cl.wait_cluster_up());
  auto alice = cl.node(1).login(alice_name, "phone");
  auto bob = cl.node(2).login(bob_name, "phone");
  auto ack = alice->request(send_frame(conv, "c1", "over tls"));
  REQUIRE(ack["t"] == "ack");
  CHECK(ack["seq"] == 1);
  auto push = bob->wait_for(is_push(1), 10000ms);
  CHECK(push["conv"] == conv);
  CHECK(push["from"] == alice_name);
  CHECK(push["body"] == "over tls");
  CHECK(metric(cl.node(1).port(), peer_series("imengine_cluster_sent_total", "n2")).value_or(0)
        > 0);
  CHECK(metric(cl.node(1).port(), peer_series("imengine_cluster_peer_up", "n2")) == uint64_t{1});
}

TEST_CASE("over TLS a node killed and restarted links again, whichever end dials") {
  cluster_pki certs;
  cluster_fixture cl(2, {}, [&](size_t k) { return certs.flags(cluster_fixture::name(k)); });
  REQUIRE(cl.wait_cluster_up());
  // n2 is dialed (n1 < n2): it links back after n1's hello; n1 dials.
  for (size_t k : {size_t{2}, size_t{1}}) {
    CAPTURE(k);
    auto other = k == 1 ? 2 : 1;
    cl.kill9(k);
    CHECK(cl.wait_peer_state(other, cluster_fixture::name(k), false));
    cl.restart(k);
    CHECK(cl.wait_cluster_up());
  }
}

TEST_CASE("a node whose certificate another CA signed is refused by the cluster's nodes") {
  cluster_pki certs;
  // n1 and n3 have certificates of the cluster's CA; n2 has the rogue one
  // and trusts both CAs, so only the good nodes' checks can keep it out.
  cluster_fixture cl(3, {}, [&](size_t k) {
    return k == 2 ? certs.flags("rogue", "rogue-bundle") : certs.flags(cluster_fixture::name(k));
  });
  // TLS between n1 and n3 works in this very cluster.
  REQUIRE(cl.wait_peer_state(1, "n3", true));
  REQUIRE(cl.wait_peer_state(3, "n1", true));
  // Over TLS the smaller name dials. n1 dialed n2 and refused its server
  // certificate; n2 dialed n3, which refused its client certificate. Two
  // more failures than counted now: at least one attempt started after
  // every cluster port was bound.
  auto failures = [](const std::string& peer) {
    return peer_series("imengine_cluster_dial_failures_total", peer);
  };
  auto n1_since = metric(cl.node(1).port(), failures("n2")).value_or(0);
  auto n2_since = metric(cl.node(2).port(), failures("n3")).value_or(0);
  CHECK(wait_dial_failures(cl, 1, "n2", n1_since, 2));
  CHECK(wait_dial_failures(cl, 2, "n3", n2_since, 2));
  CHECK(peer_up(cl, 1, "n2") == false);
  CHECK(peer_up(cl, 3, "n2") == false);
  CHECK(metric(cl.node(3).port(), peer_series("imengine_cluster_peer_up", "n2")) == uint64_t{0});
  CHECK(peer_up(cl, 2, "n1") == false);
  CHECK(peer_up(cl, 2, "n3") == false);
  CHECK(metric(cl.node(1).port(), peer_series("imengine_cluster_peer_up", "n2")) == uint64_t{0});
  CHECK(peer_up(cl, 1, "n3") == true);

  // A dm owned by n2, sent on n1: n2 is not part of the cluster.
  const std::vector<std::string> nodes{"n1", "n2", "n3"};
  auto alice_name = first_name("alice", [&](auto& u) { return owner_among(nodes, u) == "n1"; });
  auto bob_name = first_name("bob", [&](auto& u) {
    return owner_among(nodes, u) == "n1" && owner_among(nodes, dm(alice_name, u)) == "n2";
  });
  auto alice = cl.node(1).login(alice_name, "phone");
  auto r = alice->request(send_frame(dm(alice_name, bob_name), "c1", "to the rogue's conv"));
  CAPTURE(r);
  CHECK(r["t"] == "error");
  CHECK(r["code"] == "unavailable");
}

TEST_CASE("cluster links off loopback need the TLS flags or --insecure") {
  temp_dir dir;
  cluster_pki certs;
  auto ports = free_ports(2);
  auto data = " --data=" + dir.str();
  auto peers = " --peers=n1@127.0.0.1:" + std::to_string(ports[0]) + ",n2@127.0.0.1:"
               + std::to_string(ports[1]);
  refused("--cluster-host=0.0.0.0" + peers + data, "unencrypted");
  refused("--cluster-host=0.0.0.0" + peers + data, "--insecure");
  refused("--cluster-host=0.0.0.0" + peers + data, "--cluster-cert");
  // A peer reached off loopback is a plain link across the network too.
  refused(" --peers=n1@127.0.0.1:" + std::to_string(ports[0]) + ",n2@10.0.0.2:"
            + std::to_string(ports[1]) + data,
          "n2@10.0.0.2 is not loopback");
  // These pass the check and stop at the bad --node (nothing is bound):
  // --insecure, the TLS flags, and a loopback cluster without them.
  auto passes = [&](const std::string& args) {
    auto r = run_engine_command(args + " --node=bad/name" + peers + data);
    CAPTURE(args);
    CAPTURE(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "--node"));
    CHECK_FALSE(contains(r.output, "unencrypted"));
  };
  passes("--cluster-host=0.0.0.0 --insecure");
  passes("--cluster-host=0.0.0.0" + certs.flag_line("n1"));
  passes("--cluster-host=127.0.0.1");
  // Alone (no other node listed) there is no link to protect.
  auto alone = run_engine_command("--cluster-host=0.0.0.0 --node=bad/name" + data);
  CHECK(alone.exit_code == 2);
  CHECK_FALSE(contains(alone.output, "unencrypted"));
}

TEST_CASE("the TLS flags: all three, readable, and fitting together") {
  temp_dir dir;
  cluster_pki certs;
  auto data = " --data=" + dir.str();
  auto cert = " --cluster-cert=" + certs.path("n1.pem");
  auto key = " --cluster-key=" + certs.path("n1.key");
  auto ca = " --cluster-ca=" + certs.path("ca.pem");
  refused(cert + data, "missing --cluster-key, --cluster-ca");
  refused(cert + key + data, "missing --cluster-ca");
  refused(ca + data, "missing --cluster-cert, --cluster-key");
  refused(key + ca + data, "missing --cluster-cert");
  auto none = dir.str() + "/none.pem";
  refused(" --cluster-cert=" + none + key + ca + data, "--cluster-cert " + none + " cannot be read");
  refused(cert + " --cluster-key=" + none + ca + data, "--cluster-key " + none + " cannot be read");
  refused(cert + key + " --cluster-ca=" + none + data, "--cluster-ca " + none + " cannot be read");
  auto not_pem = certs.path("not-pem.pem");
  refused(" --cluster-cert=" + not_pem + key + ca + data, "--cluster-cert " + not_pem);
  refused(cert + " --cluster-key=" + not_pem + ca + data, "--cluster-key " + not_pem);
  refused(cert + key + " --cluster-ca=" + not_pem + data, "--cluster-ca " + not_pem);
  refused(cert + " --cluster-key=" + certs.path("n2.key") + ca + data, "is not the key of");
  // Every peer would refuse a certificate the configured CA did not sign.
  refused(certs.flag_line("rogue") + data, "does not verify against --cluster-ca");
  auto help = run_engine_command("--help");
  CHECK(help.exit_code == 0);
  for (auto flag : {"--cluster-cert=", "--cluster-key=", "--cluster-ca="})
    CHECK(contains(help.output, flag));
}
