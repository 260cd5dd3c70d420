#include "bench/driver.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace imbench {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct io_pool::impl {
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<std::optional<asio::executor_work_guard<asio::io_context::executor_type>>> guards;
  std::vector<std::thread> threads;
  std::atomic<unsigned> finished{0};
  size_t next = 0;
};

io_pool::io_pool(unsigned threads) : impl_(std::make_unique<impl>()) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    impl_->ios.push_back(std::make_unique<asio::io_context>(1));
    impl_->guards.emplace_back(asio::make_work_guard(*impl_->ios.back()));
  }
  for (auto& io : impl_->ios)
    impl_->threads.emplace_back([this, io = io.get()] {
      io->run();
      ++impl_->finished;
    });
}

io_pool::~io_pool() { stop(); }

asio::io_context& io_pool::next() {
  return *impl_->ios[impl_->next++ % impl_->ios.size()];
}

void io_pool::stop() {
  if (impl_->threads.empty())
    return;
  for (auto& g : impl_->guards)
    g.reset();
  // Closed connections drain in milliseconds; anything still pending after
  // that is abandoned rather than waited for.
  auto until = bench_clock::now() + 3s;
  while (impl_->finished < impl_->threads.size() && bench_clock::now() < until)
    std::this_thread::sleep_for(5ms);
  for (auto& io : impl_->ios)
    io->stop();
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

monitor::monitor(std::string name, const totals& t)
    : name_(std::move(name)), totals_(t), start_(bench_clock::now()), last_(start_) {}

double monitor::elapsed_s() const {
  return std::chrono::duration<double>(bench_clock::now() - start_).count();
}

void monitor::tick() {
  auto now = bench_clock::now();
  if (now - last_ < 1s)
    return;
  double dt = std::chrono::duration<double>(now - last_).count();
  uint64_t acked = totals_.acked, delivered = totals_.delivered;
  std::fprintf(stderr,
               "[%s %6.1fs] conns %llu (failed %llu) sent %llu acked %llu (%.0f/s) "
               "delivered %llu (%.0f/s) echoed %llu errors %llu\n",
               name_.c_str(), elapsed_s(), (unsigned long long)totals_.ready.load(),
               (unsigned long long)totals_.failed.load(), (unsigned long long)totals_.sent.load(),
               (unsigned long long)acked, (acked - last_acked_) / dt,
               (unsigned long long)delivered, (delivered - last_delivered_) / dt,
               (unsigned long long)totals_.echoed.load(), (unsigned long long)totals_.errors.load());
  last_ = now;
  last_acked_ = acked;
  last_delivered_ = delivered;
}

bool monitor::wait_until(const std::function<bool()>& done, bench_clock::duration limit) {
  auto until = bench_clock::now() + limit;
  while (!done()) {
    if (bench_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(5ms);   // polling period of the main thread
    tick();
  }
  return true;
}

fleet::fleet(io_pool& pool, totals& t, conn_config base, unsigned concurrency)
    : pool_(pool), totals_(t), base_(std::move(base)), concurrency_(std::max(1u, concurrency)) {}

std::shared_ptr<connection> fleet::add(const std::string& user, const std::string& device,
                                       uint16_t port) {
  auto cfg = base_;
  if (port != 0)
    cfg.port = port;
  cfg.user = user;
  cfg.device = device;
  conns_.push_back(connection::create(pool_.next(), std::move(cfg), totals_));
  return conns_.back();
}

void fleet::launch(size_t i) {
  auto c = conns_[i];
  c->post([this, c] {
    c->start([this](bool) {
      ++settled_;
      auto n = next_++;
      if (n < end_)
        launch(n);
    });
  });
}

size_t fleet::open_all(monitor& mon, bench_clock::duration limit) {
  size_t first = started_;
  end_ = conns_.size();
  settled_ = first;
  next_ = std::min(end_, first + concurrency_);
  for (size_t i = first; i < next_; ++i)
    launch(i);
  started_ = end_;
  mon.wait_until([&] { return settled_.load() >= end_; }, limit);
  size_t ready = 0;
  for (size_t i = first; i < end_; ++i)
    ready += conns_[i]->is_ready();   // racy read of a bool set once: only a count
  return ready;
}

void fleet::close_all() {
  for (auto& c : conns_)
    c->close();
}

uint64_t fleet::duplicated() const {
  uint64_t n = 0;
  for (auto& c : conns_)
    n += c->duplicated;
  return n;
}

uint64_t fleet::out_of_order() const {
  uint64_t n = 0;
  for (auto& c : conns_)
    n += c->out_of_order;
  return n;
}

std::vector<uint32_t> fleet::delivery_us() const {
  std::vector<uint32_t> all;
  for (auto& c : conns_)
    all.insert(all.end(), c->delivery_us.begin(), c->delivery_us.end());
  return all;
}

bench_clock::time_point fleet::last_push() const {
  bench_clock::time_point t{};
  for (auto& c : conns_)
    t = std::max(t, c->last_push);
  return t;
}

std::vector<std::string> fleet::error_samples(size_t max) const {
  std::vector<std::string> out;
  for (auto& c : conns_)
    if (!c->first_error.empty() && out.size() < max)
      out.push_back(c->first_error);
  return out;
}

sender::sender(std::shared_ptr<connection> c, send_plan plan, totals& t)
    : conn_(std::move(c)), plan_(std::move(plan)), totals_(t) {}

void sender::start() {
  conn_->post([this] {
    // Installed on the io thread: the connection may be receiving already.
    conn_->on_frame = [this](connection&, const json& f) { on_frame(f); };
    if (!conn_->is_ready())
      done_ = true;
    else
      fill();
  });
}

void sender::fill() {
  while (in_flight_.size() < plan_.window && issued_ < plan_.count &&
         bench_clock::now() < plan_.stop_at) {
    auto req = conn_->next_req();
    auto now = bench_clock::now();
    in_flight_.emplace(req, now);
    ++issued_;
    ++totals_.sent;
    conn_->send({{"t", "send"}, {"req", req}, {"cmid", plan_.cmid_prefix + std::to_string(issued_)},
                 {"conv", plan_.conv}, {"type", "text"}, {"body", make_body(now, plan_.size)}});
  }
  if (in_flight_.empty())
    done_ = true;
}

void sender::on_frame(const json& f) {
  auto req = f.find("req");
  if (req == f.end() || !req->is_number_unsigned())
    return;
  auto it = in_flight_.find(req->get<uint64_t>());
  if (it == in_flight_.end())
    return;
  if (f.value("t", std::string()) == "ack") {
    ack_us.push_back(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(bench_clock::now() - it->second).count()));
    acked_seqs.push_back(f.value("seq", uint64_t{0}));
    ++totals_.acked;
  }
  // An error reply (already counted by the connection) frees the slot too:
  // a benchmark does not retry.
  in_flight_.erase(it);
  fill();
}

std::vector<std::unique_ptr<sender>> start_senders(const std::vector<std::shared_ptr<connection>>& from,
                                                   size_t n, const send_plan& plan, totals& t) {
  std::vector<std::unique_ptr<sender>> out;
  for (size_t i = 0; i < n && i < from.size(); ++i) {
    auto p = plan;
    p.cmid_prefix += std::to_string(i) + "-";
    out.push_back(std::make_unique<sender>(from[i], std::move(p), t));
  }
  for (auto& s : out)
    s->start();
  return out;
}

bool wait_senders(monitor& mon, const std::vector<std::unique_ptr<sender>>& senders,
                  bench_clock::duration limit) {
  return mon.wait_until([&] {
    for (const auto& s : senders)
      if (!s->done())
        return false;
    return true;
  }, limit);
}

} // namespace imbench

namespace imbench {

json base_summary(const std::string& scenario, json params, const totals& t, const fleet& f) {
  return {{"scenario", scenario},
          {"params", std::move(params)},
          {"connections", f.all().size()},
          {"connections_ready", t.ready.load()},
          {"sent", t.sent.load()},
          {"acked", t.acked.load()},
          {"delivered", t.delivered.load()},
          {"echoed", t.echoed.load()},
          {"errors", t.errors.load()},
          {"error_samples", f.error_samples(5)},
          {"duplicated", f.duplicated()},
          {"out_of_order", f.out_of_order()},
          {"lost", 0},
          {"ok", true}};
}

} // namespace imbench

namespace imbench {

namespace {

// Counters of one pull_announced call, shared with the io threads so a
// timed-out wait leaves nothing dangling.
struct pull_shared {
  std::vector<uint64_t> expected;
  std::atomic<uint64_t> pulling{0}, requests{0}, finished{0}, examined{0};
};

// One connection's pull: pages of `history` from its first announced hole
// to its last, recording only the holes.
struct puller {
  connection* conn = nullptr;   // owned by the fleet; on_frame holds the puller
  std::shared_ptr<pull_shared> shared;
  std::string conv;
  uint64_t upto = 0;        // last announced hole
  uint64_t req = 0;

  void ask(uint64_t after) {
    req = conn->next_req();
    ++shared->requests;
    conn->send({{"t", "history"}, {"req", req}, {"conv", conv}, {"after", after},
                {"limit", std::min<uint64_t>(1000, upto - after)}});
  }
  void on_frame(const json& f) {
    if (req == 0 || f.value("req", uint64_t{0}) != req)
      return;
    req = 0;
    uint64_t last = 0;
    if (f.value("t", std::string()) == "history_result") {
      for (auto& m : f["msgs"]) {
        auto seq = m.value("seq", uint64_t{0});
        last = std::max(last, seq);
        auto& track = conn->convs[conv];
        if (seq <= upto && (seq >= track.seen.size() || !track.seen[seq]))
          conn->record_pulled(m);
      }
    }
    // An error (counted by the connection) or an empty page ends the pull.
    if (last != 0 && last < upto)
      ask(last);
    else
      ++shared->finished;
  }
};

} // namespace

pull_outcome pull_announced(fleet& f, monitor& mon, const std::string& conv,
                            const std::vector<uint64_t>& expected, bench_clock::duration limit) {
  auto shared = std::make_shared<pull_shared>();
  shared->expected = expected;
  for (auto& c : f.all()) {
    auto p = std::make_shared<puller>();
    p->conn = c.get();
    p->shared = shared;
    p->conv = conv;
    c->post([p] {
      auto& c = *p->conn;
      auto it = c.convs.find(p->conv);
      uint64_t first = 0;
      if (c.is_ready() && it != c.convs.end()) {
        auto& track = it->second;
        for (auto seq : p->shared->expected) {
          if (seq > track.notified)
            break;
          if (seq >= track.seen.size() || !track.seen[seq]) {
            first = first ? first : seq;
            p->upto = seq;
          }
        }
      }
      if (first) {
        ++p->shared->pulling;
        c.on_frame = [p](connection&, const json& fr) { p->on_frame(fr); };
        p->ask(first - 1);
      }
      ++p->shared->examined;
    });
  }
  auto n = f.all().size();
  bool complete = mon.wait_until(
    [&] { return shared->examined == n && shared->finished == shared->pulling; }, limit);
  return {shared->pulling.load(), shared->requests.load(), complete};
}

uint64_t unsettled(const fleet& f, const std::string& conv, const std::vector<uint64_t>& expected) {
  struct shared_t {
    std::vector<uint64_t> expected;
    std::atomic<uint64_t> missing{0};
    std::atomic<size_t> answered{0};
  };
  auto sh = std::make_shared<shared_t>();
  sh->expected = expected;
  for (auto& c : f.all())
    c->post([c = c.get(), sh, conv] {
      auto it = c->convs.find(conv);
      uint64_t n = 0;
      for (auto seq : sh->expected) {
        if (it == c->convs.end()) {
          ++n;
          continue;
        }
        auto& track = it->second;
        n += seq > track.notified && (seq >= track.seen.size() || !track.seen[seq]);
      }
      sh->missing += n;
      ++sh->answered;
    });
  auto until = bench_clock::now() + std::chrono::seconds(1);
  while (sh->answered < f.all().size()) {
    if (bench_clock::now() >= until)
      return UINT64_MAX;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return sh->missing;
}

bool wait_settled(const fleet& f, monitor& mon, const totals& t, uint64_t copies,
                  const std::string& conv, const std::vector<uint64_t>& expected,
                  bench_clock::duration limit) {
  auto next_scan = bench_clock::now();
  return mon.wait_until([&] {
    if (t.delivered + t.echoed >= copies)
      return true;
    if (t.notified == 0 || bench_clock::now() < next_scan)
      return false;   // without a notify the counters are exact
    next_scan = bench_clock::now() + std::chrono::milliseconds(100);
    return unsettled(f, conv, expected) == 0;
  }, limit);
}

run_end end_run(fleet& conns, io_pool& pool, monitor& mon, const totals& t, uint64_t copies,
                const std::string& conv, const std::vector<std::unique_ptr<sender>>& senders,
                bool finished, bool pull, bench_clock::duration grace) {
  run_end out;
  auto collect = [&] {
    for (const auto& s : senders)
      out.committed.insert(out.committed.end(), s->acked_seqs.begin(), s->acked_seqs.end());
    std::sort(out.committed.begin(), out.committed.end());
  };
  if (finished) {
    collect();
    wait_settled(conns, mon, t, copies, conv, out.committed, grace);
    if (pull)
      out.pull = pull_announced(conns, mon, conv, out.committed, std::chrono::seconds(30));
  }
  conns.close_all();
  pool.stop();
  if (!finished)
    collect();
  for (const auto& s : senders)
    out.ack_us.insert(out.ack_us.end(), s->ack_us.begin(), s->ack_us.end());
  return out;
}

std::vector<uint32_t> arrival_spread_us(const fleet& f, const std::string& conv,
                                        const std::vector<uint64_t>& expected,
                                        const std::unordered_map<uint64_t, size_t>& sender_of) {
  std::vector<uint32_t> out;
  out.reserve(expected.size());
  const auto& conns = f.all();
  for (auto seq : expected) {
    auto from = sender_of.find(seq);
    uint32_t lo = UINT32_MAX, hi = 0;
    bool all = true;
    for (size_t i = 0; i < conns.size() && all; ++i) {
      if (from != sender_of.end() && from->second == i)
        continue;
      auto it = conns[i]->convs.find(conv);
      if (it == conns[i]->convs.end() || seq >= it->second.arrival.size() ||
          it->second.arrival[seq] == 0) {
        all = false;
        break;
      }
      lo = std::min(lo, it->second.arrival[seq]);
      hi = std::max(hi, it->second.arrival[seq]);
    }
    if (all && hi >= lo)
      out.push_back(hi - lo);
  }
  return out;
}

} // namespace imbench
