// imfill: writes N messages into a fresh data directory in the engine's
// exact on-disk format, through the store's own write API (commit_messages,
// change_members, append_inbox, set_fanout, set_read, set_acked,
// sweep_dedupe), so that a restart benchmark starts from what a long-running
// node would hold. Many messages per transaction and no fsync per commit:
// the data is the same, only the durability points differ.
//
// Shape: U users (u000000...), each with about D dm partners; G small groups
// (write diffusion: inbox copies) and L large groups above the engine's
// large-group threshold (read diffusion: timeline only). Timestamps spread
// over the last --days days, so most dedupe entries have expired and are
// swept, as the engine's writer would have done.
//
// Prints progress on stderr (at most ~40 lines) and a JSON manifest to
// DIR/fill.manifest.json (probe conversation and its last seq, counts).
// `--add-pending=N` on a filled DIR (same shape options) commits one more
// message in N dms without fanning it out: a crash between the two.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/ids.hpp"
#include "storage/store.hpp"

namespace {

using namespace imengine;
using steady = std::chrono::steady_clock;

struct options {
  std::string data;
  uint64_t messages = 10'000'000;
  uint32_t users = 100'000;
  uint32_t dm_per_user = 10;        // dm partners per user (on average)
  uint32_t groups = 10'000;         // small groups, 3..20 members
  uint32_t large_groups = 2;        // 1000 members each (timeline mode)
  uint32_t large_members = 1000;
  double group_share = 0.15;        // of messages in small groups
  double large_share = 0.05;        // of messages in large groups
  uint32_t days = 30;
  uint32_t batch = 50'000;          // messages per write transaction
  uint32_t body = 40;               // average body size
  uint32_t pending_fanouts = 0;     // convs left with an unfinished fan-out
  uint32_t add_pending = 0;         // on a filled DIR: only add unfinished fan-outs
  uint64_t dedupe_ttl = 86400;      // engine default
  uint64_t map_size_mb = 65536;     // engine default
  uint64_t seed = 42;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "imfill: " << why << "\n"
            << "usage: imfill --data=DIR [--messages=N] [--users=N] [--dm-per-user=N]\n"
               "  [--groups=N] [--large-groups=N] [--large-members=N] [--group-share=F]\n"
               "  [--large-share=F] [--days=N] [--batch=N] [--body=N]\n"
               "  [--pending-fanouts=N] [--map-size-mb=N] [--seed=N]\n"
               "       imfill --data=DIR --add-pending=N [same shape options as the fill]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos)
      usage("bad argument " + a);
    auto k = a.substr(2, eq - 2);
    auto v = a.substr(eq + 1);
    auto num = [&] { return std::stoull(v); };
    if (k == "data") o.data = v;
    else if (k == "messages") o.messages = num();
    else if (k == "users") o.users = static_cast<uint32_t>(num());
    else if (k == "dm-per-user") o.dm_per_user = static_cast<uint32_t>(num());
    else if (k == "groups") o.groups = static_cast<uint32_t>(num());
    else if (k == "large-groups") o.large_groups = static_cast<uint32_t>(num());
    else if (k == "large-members") o.large_members = static_cast<uint32_t>(num());
    else if (k == "group-share") o.group_share = std::stod(v);
    else if (k == "large-share") o.large_share = std::stod(v);
    else if (k == "days") o.days = static_cast<uint32_t>(num());
    else if (k == "batch") o.batch = static_cast<uint32_t>(num());
    else if (k == "body") o.body = static_cast<uint32_t>(num());
    else if (k == "pending-fanouts") o.pending_fanouts = static_cast<uint32_t>(num());
    else if (k == "add-pending") o.add_pending = static_cast<uint32_t>(num());
    else if (k == "map-size-mb") o.map_size_mb = num();
    else if (k == "seed") o.seed = num();
    else usage("unknown option --" + k);
  }
  if (o.data.empty())
    usage("--data is required");
  if (o.users < 3 || o.batch == 0 || o.group_share + o.large_share > 0.95)
    usage("an option is out of range");
  if (o.large_groups > 0 && o.large_members > o.users)
    usage("--large-members exceeds --users");
  return o;
}

struct conv_info {
  std::string name;
  conv_kind kind = conv_kind::dm;
  bool timeline = false;            // read diffusion: no inbox copies
  std::vector<uint32_t> members;    // user indices; [0] owns a group
  uint64_t last_seq = 0;
};

// What the engine's conversation does to the conversation list in a commit
// of `seq`: an inbox-mode conversation moves every member; a timeline one
// lists its members once, with its first message.
storage::list_update list_of(const conv_info& c, const std::vector<std::string>& users,
                             uint64_t seq) {
  storage::list_update u;
  u.was = u.now = c.timeline ? diffusion::timeline : diffusion::inbox;
  if (!c.timeline || seq == 1)
    for (auto i : c.members)
      u.members.push_back(users[i]);
  return u;
}

std::string user_name(uint32_t i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "u%06u", i);
  return buf;
}

// A snowflake mid for a past timestamp, in the engine's layout (41 bits ms
// since 2024-01-01, 10 bits node, 12 bits counter).
uint64_t mid_at(int64_t ts_ms, uint16_t node, uint64_t counter) {
  constexpr int64_t epoch = 1704067200000;
  auto elapsed = static_cast<uint64_t>(std::max<int64_t>(ts_ms - epoch, 0));
  return (elapsed << 22) | (uint64_t{node} << 12) | (counter & 0xfff);
}

double secs_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  namespace fs = std::filesystem;
  auto manifest_path = fs::path(o.data) / "fill.manifest.json";
  if (o.add_pending > 0 && !fs::exists(manifest_path)) {
    std::cerr << "imfill: --add-pending wants a filled " << o.data << "\n";
    return 2;
  }
  if (o.add_pending == 0 && fs::exists(o.data) && !fs::is_empty(o.data)) {
    std::cerr << "imfill: " << o.data << " exists and is not empty: want a fresh directory\n";
    return 2;
  }
  auto start = steady::now();
  std::mt19937_64 rng(o.seed);
  auto uniform = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };

  std::vector<std::string> users(o.users);
  for (uint32_t i = 0; i < o.users; ++i)
    users[i] = user_name(i);

  // ---- shape: conversations sorted by name, so index order is key order
  // and every batch writes each db roughly front to back.
  std::vector<conv_info> convs;
  {
    std::unordered_set<uint64_t> pairs;
    uint64_t want = uint64_t{o.users} * o.dm_per_user / 2;
    pairs.reserve(want * 2);
    for (uint64_t tries = 0; pairs.size() < want && tries < want * 4; ++tries) {
      auto a = static_cast<uint32_t>(uniform(o.users));
      auto b = static_cast<uint32_t>(uniform(o.users));
      if (a == b)
        continue;
      if (a > b)
        std::swap(a, b);
      if (pairs.insert((uint64_t{a} << 32) | b).second) {
        conv_info c;
        c.name = dm_conv(users[a], users[b]);
        c.members = {a, b};
        convs.push_back(std::move(c));
      }
    }
    auto add_group = [&](std::string name, uint32_t size, bool timeline) {
      conv_info c;
      c.name = std::move(name);
      c.kind = conv_kind::group;
      c.timeline = timeline;
      std::unordered_set<uint32_t> seen;
      for (uint64_t tries = 0; c.members.size() < size && tries < size * 20ull; ++tries) {
        auto u = static_cast<uint32_t>(uniform(o.users));
        if (seen.insert(u).second)
          c.members.push_back(u);
      }
      convs.push_back(std::move(c));
    };
    char buf[32];
    for (uint32_t g = 0; g < o.groups; ++g) {
      std::snprintf(buf, sizeof(buf), "g:grp%05u", g);
      add_group(buf, 3 + static_cast<uint32_t>(uniform(18)), false);
    }
    for (uint32_t g = 0; g < o.large_groups; ++g) {
      std::snprintf(buf, sizeof(buf), "g:big%02u", g);
      add_group(buf, o.large_members, true);
    }
    std::sort(convs.begin(), convs.end(),
              [](const conv_info& x, const conv_info& y) { return x.name < y.name; });
  }
  std::vector<uint32_t> dm_idx, group_idx, large_idx;
  for (uint32_t i = 0; i < convs.size(); ++i)
    (convs[i].kind == conv_kind::dm ? dm_idx : convs[i].timeline ? large_idx : group_idx)
      .push_back(i);
  if (dm_idx.empty())
    usage("no dm conversations: raise --users or --dm-per-user");
  std::cerr << "imfill: shape: " << users.size() << " users, " << dm_idx.size() << " dms, "
            << group_idx.size() << " groups, " << large_idx.size() << " large groups ("
            << secs_since(start) << " s)\n";

  storage::store st(storage::store_options{o.data, false, o.map_size_mb});

  auto now = now_ms();
  auto span_ms = int64_t{o.days} * 86'400'000;
  auto first_ts = now - span_ms - 3'600'000;   // ends an hour ago
  const uint16_t node = node_number("n1");
  uint64_t mid_counter = 0, cmid_counter = 0;
  std::string pad(4096, 'x');
  auto make_body = [&](uint64_t i) {
    auto len = o.body / 2 + uniform(o.body + 1);
    auto b = "message " + std::to_string(i) + " ";
    b.append(pad, 0, std::min<size_t>(len > b.size() ? len - b.size() : 0, pad.size()));
    return b;
  };
  auto make_message = [&](conv_info& c, uint32_t from, int64_t ts) {
    message m;
    m.conv = c.name;
    m.seq = ++c.last_seq;
    m.mid = mid_at(ts, node, mid_counter++);
    m.from = users[from];
    m.device = "d1";
    m.cmid = "c" + std::to_string(++cmid_counter);
    m.ts = ts;
    return m;
  };

  // Conversations whose last commit never reached the inboxes (a crash
  // between commit and fan-out): the engine finishes them at start. The
  // seq comes from the store, so this works on a filled directory too.
  std::vector<std::string> pending_names;
  auto leave_pending = [&](uint32_t n, const std::string& exclude) {
    auto t = st.write();
    std::unordered_set<uint32_t> chosen;
    for (uint64_t tries = 0; chosen.size() < n && tries < n * 10ull; ++tries) {
      auto ci = dm_idx[uniform(dm_idx.size())];
      if (convs[ci].name != exclude)
        chosen.insert(ci);
    }
    for (auto ci : chosen) {
      auto& c = convs[ci];
      auto meta = st.conv(t, c.name);
      if (!meta)
        continue;
      c.last_seq = meta->last_seq;
      auto m = make_message(c, c.members[0], now - 1000);
      m.body = make_body(c.last_seq);
      if (st.commit_messages(t, c.name, static_cast<uint8_t>(c.kind), {m},
                             m.ts / 1000 + static_cast<int64_t>(o.dedupe_ttl),
                             list_of(c, users, m.seq))
          == errc::none)
        pending_names.push_back(c.name);
    }
    t.commit();
    std::cerr << "imfill: left " << pending_names.size() << " fan-outs unfinished\n";
  };
  if (o.add_pending > 0) {
    auto manifest = nlohmann::json::parse(std::ifstream(manifest_path));
    // Fresh cmids: the fill used c1..c<messages>.
    cmid_counter = manifest.value("messages", uint64_t{0}) + manifest.value("pending_fanouts", uint64_t{0});
    leave_pending(o.add_pending, manifest.value("probe_conv", ""));
    manifest["pending_fanouts"] = manifest.value("pending_fanouts", 0) + pending_names.size();
    std::ofstream(manifest_path) << manifest.dump(2) << "\n";
    return 0;
  }

  // Group creations first: the system message (seq 1) with change_members,
  // as the conversation actor commits a group_create.
  struct pending {
    uint32_t conv;
    message m;
    bool create = false;
  };
  std::vector<pending> batch;
  batch.reserve(o.batch);
  uint64_t written = 0, inbox_copies = 0, commits = 0;
  std::vector<uint64_t> inbox_head(o.users, 0);
  std::vector<std::vector<uint32_t>> inbox_refs(o.users);   // per batch: indices into `batch`

  auto flush = [&] {
    if (batch.empty())
      return;
    // Stable by conv: per-conv seq order is kept, keys go in order.
    std::vector<uint32_t> order(batch.size());
    for (uint32_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t x, uint32_t y) { return batch[x].conv < batch[y].conv; });
    auto t = st.write();
    for (auto i : order) {
      auto& p = batch[i];
      auto& c = convs[p.conv];
      auto expires = p.m.ts / 1000 + static_cast<int64_t>(o.dedupe_ttl);
      if (st.commit_messages(t, c.name, static_cast<uint8_t>(c.kind), {p.m}, expires,
                             list_of(c, users, p.m.seq))
          != errc::none) {
        std::cerr << "imfill: commit_messages refused " << c.name << " seq " << p.m.seq << "\n";
        std::exit(1);
      }
      if (p.create) {
        std::vector<std::pair<std::string, member_role>> added;
        for (size_t k = 0; k < c.members.size(); ++k)
          added.emplace_back(users[c.members[k]], k == 0 ? member_role::owner : member_role::member);
        st.change_members(t, c.name, added, {}, p.m.seq);
      }
      if (!c.timeline)
        for (auto u : c.members)
          inbox_refs[u].push_back(i);
    }
    // Inbox copies in commit order per user (batch index order = time order).
    for (uint32_t u = 0; u < o.users; ++u) {
      auto& refs = inbox_refs[u];
      if (refs.empty())
        continue;
      std::sort(refs.begin(), refs.end());
      std::vector<message> copies;
      copies.reserve(refs.size());
      for (auto i : refs)
        copies.push_back(batch[i].m);
      if (st.append_inbox(t, users[u], inbox_head[u] + 1, copies) != errc::none) {
        std::cerr << "imfill: append_inbox refused " << users[u] << "\n";
        std::exit(1);
      }
      inbox_head[u] += copies.size();
      inbox_copies += copies.size();
      refs.clear();
    }
    // Every copy is in: the watermarks reach last_seq, fanout keys go away.
    uint32_t prev = UINT32_MAX;
    for (auto i : order)
      if (batch[i].conv != prev) {
        prev = batch[i].conv;
        st.set_fanout(t, convs[prev].name, convs[prev].last_seq);
      }
    t.commit();
    commits++;
    written += batch.size();
    batch.clear();
  };

  uint64_t total = o.messages;
  uint64_t step = std::max<uint64_t>(total / 20, 1);
  uint64_t next_report = step;
  uint64_t produced = 0;
  auto ts_of = [&](uint64_t i) {
    return first_ts + static_cast<int64_t>(static_cast<double>(i) / total * span_ms);
  };
  for (auto gi : group_idx)
    if (produced < total) {
      auto& c = convs[gi];
      auto m = make_message(c, c.members[0], ts_of(produced));
      m.type = "system";
      nlohmann::json body{{"op", "create"}, {"members", nlohmann::json::array()}};
      for (auto u : c.members)
        body["members"].push_back(users[u]);
      m.body = body.dump();
      batch.push_back({gi, std::move(m), true});
      if (batch.size() >= o.batch)
        flush();
      produced++;
    }
  for (auto gi : large_idx)
    if (produced < total) {
      auto& c = convs[gi];
      auto m = make_message(c, c.members[0], ts_of(produced));
      m.type = "system";
      m.body = R"({"op":"create","members":[]})";   // the list is in `members`
      batch.push_back({gi, std::move(m), true});
      produced++;
    }
  for (; produced < total; ++produced) {
    auto r = std::uniform_real_distribution<double>(0, 1)(rng);
    uint32_t ci;
    if (r < o.large_share && !large_idx.empty())
      ci = large_idx[uniform(large_idx.size())];
    else if (r < o.large_share + o.group_share && !group_idx.empty())
      ci = group_idx[uniform(group_idx.size())];
    else
      ci = dm_idx[uniform(dm_idx.size())];
    auto& c = convs[ci];
    auto from = c.members[uniform(c.members.size())];
    auto m = make_message(c, from, ts_of(produced));
    m.body = make_body(produced);
    batch.push_back({ci, std::move(m), false});
    if (batch.size() >= o.batch)
      flush();
    if (produced + 1 >= next_report) {
      flush();
      next_report += step;
      auto el = secs_since(start);
      std::cerr << "imfill: " << written << "/" << total << " messages, " << inbox_copies
                << " inbox copies, " << el << " s, " << static_cast<uint64_t>(written / el)
                << " msg/s\n";
    }
  }
  flush();

  // Read positions: most conversations read to the end, some a few behind;
  // each user's one device acked up to (nearly) its inbox head.
  {
    auto t0 = steady::now();
    auto t = st.write();
    uint64_t positions = 0;
    for (auto& c : convs) {
      if (c.last_seq == 0)
        continue;
      for (auto u : c.members) {
        auto behind = chance(0.8) ? 0 : 1 + uniform(std::min<uint64_t>(20, c.last_seq));
        st.set_read(t, users[u], c.name, c.last_seq - std::min(behind, c.last_seq));
        positions++;
      }
    }
    for (uint32_t u = 0; u < o.users; ++u)
      if (inbox_head[u] > 0) {
        auto behind = chance(0.9) ? 0 : 1 + uniform(std::min<uint64_t>(10, inbox_head[u]));
        st.set_acked(t, users[u], "d1", inbox_head[u] - std::min(behind, inbox_head[u]));
      }
    t.commit();
    std::cerr << "imfill: read positions " << positions << ", acks " << o.users << " ("
              << secs_since(t0) << " s)\n";
  }

  // The writer's dedupe sweep would have removed expired entries long ago.
  uint64_t swept = 0;
  {
    auto t0 = steady::now();
    std::string resume;
    auto now_s = now_ms() / 1000;
    uint64_t max_rounds = total / 200'000 + 100;
    for (uint64_t round = 0; round < max_rounds; ++round) {
      auto t = st.write();
      swept += st.sweep_dedupe(t, now_s, resume, 200'000);
      t.commit();
      if (resume.empty())
        break;
    }
    std::cerr << "imfill: swept " << swept << " expired dedupe entries (" << secs_since(t0)
              << " s)\n";
  }

  if (o.pending_fanouts > 0)
    leave_pending(o.pending_fanouts, "");
  // Probe: the busiest dm, for the restart check (history + send).
  uint32_t probe = dm_idx.front();
  for (auto ci : dm_idx)
    if (convs[ci].last_seq > convs[probe].last_seq)
      probe = ci;
  uint64_t total_inbox = 0;
  for (auto h : inbox_head)
    total_inbox += h;
  nlohmann::json manifest{
    {"messages", written},
    {"users", o.users},
    {"dms", dm_idx.size()},
    {"groups", group_idx.size()},
    {"large_groups", large_idx.size()},
    {"inbox_copies", total_inbox},
    {"dedupe_swept", swept},
    {"pending_fanouts", pending_names.size()},
    {"probe_conv", convs[probe].name},
    {"probe_user", users[convs[probe].members[0]]},
    {"probe_last_seq", convs[probe].last_seq},
    {"days", o.days},
    {"seed", o.seed},
    {"fill_seconds", secs_since(start)},
  };
  std::ofstream(fs::path(o.data) / "fill.manifest.json") << manifest.dump(2) << "\n";
  std::cerr << "imfill: done: " << written << " messages in " << commits << " txns, "
            << total_inbox << " inbox copies, " << secs_since(start) << " s\n";
  std::cout << manifest.dump() << "\n";
  return 0;
}
