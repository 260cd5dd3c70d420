#include "examples/chat_client.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "net/ws_client.hpp"

namespace chat {

namespace {

// Auth errors a retry cannot fix: stop reconnecting.
const std::set<std::string> terminal_auth{"unauthorized", "forbidden", "bad_frame"};
// Send errors worth a retry with the same cmid (dedupe makes it safe).
const std::set<std::string> transient{"unavailable", "overloaded", "rate_limited", "storage",
                                      "internal"};
constexpr int close_replaced = 4001;
constexpr uint32_t history_limit = 50;

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
         || c == '.' || c == '@' || c == '-';
}

json client_error(const std::string& code, const std::string& msg) {
  return {{"t", "error"}, {"code", code}, {"msg", msg}};
}

bool is_error(const json& f) {
  return f.is_object() && f.value("t", "") == "error";
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 r{std::random_device{}()};
  return r;
}

std::string random_hex(size_t bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rng()() & 0xff);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

uint64_t u64(const json& f, const char* key) {
  auto it = f.find(key);
  return it != f.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

} // namespace

bool valid_id(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), id_char);
}

bool valid_conv(const std::string& s) {
  if (s.rfind("g:", 0) == 0 || s.rfind("r:", 0) == 0)
    return valid_id(s.substr(2));
  if (s.rfind("dm:", 0) != 0)
    return false;
  auto rest = s.substr(3);
  auto sep = rest.find(':');   // users cannot contain ':'
  if (sep == std::string::npos)
    return false;
  auto a = rest.substr(0, sep), b = rest.substr(sep + 1);
  return valid_id(a) && valid_id(b) && a < b;
}

std::string dm_id(const std::string& a, const std::string& b) {
  return a < b ? "dm:" + a + ":" + b : "dm:" + b + ":" + a;
}

std::vector<std::string> mentions_of(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '@' || (i > 0 && text[i - 1] != ' ' && text[i - 1] != '\t'))
      continue;
    size_t j = i + 1;
    while (j < text.size() && id_char(text[j]))
      ++j;
    auto name = text.substr(i + 1, j - i - 1);
    while (!name.empty() && std::string(".,:;!?").find(name.back()) != std::string::npos)
      name.pop_back();
    if (name == "all")
      name = "@all";
    if ((valid_id(name) || name == "@all") && std::find(out.begin(), out.end(), name) == out.end()
        && out.size() < 50)
      out.push_back(name);
    i = j - 1;
  }
  return out;
}

// ---- public members: post work to the worker -------------------------------

chat_client::chat_client(client_options opts, handler on_event)
  : opts_(std::move(opts)), on_event_(std::move(on_event)) {
  load_state();
}

chat_client::~chat_client() {
  stop();
}

void chat_client::start() {
  std::lock_guard<std::mutex> g(mtx_);
  if (started_)
    return;
  started_ = true;
  worker_ = std::thread([this] { run(); });
}

void chat_client::stop() {
  {
    std::lock_guard<std::mutex> g(mtx_);
    if (!started_ || stopping_)
      return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable())
    worker_.join();
}

void chat_client::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g(mtx_);
    commands_.push_back(std::move(fn));
  }
  cv_.notify_all();
}

std::string chat_client::send(const std::string& conv, const std::string& body,
                              std::vector<std::string> mentions) {
  // The cmid is made here, once: every later write of this message reuses it.
  auto cmid = opts_.device.substr(0, 20) + "-" + random_hex(9);
  {
    std::lock_guard<std::mutex> g(mtx_);
    ++outbox_size_;
  }
  post([this, cmid, conv, body, mentions = std::move(mentions)] {
    out_item item;
    item.cmid = cmid;
    item.conv = conv;
    item.body = body;
    item.mentions = mentions;
    item.order = ++order_;
    outbox_.push_back(std::move(item));
    save_state();   // before it is written: a crash now keeps the line
    if (ws_ && online())
      write_send(cmid);
    else
      emit("queued", {{"cmid", cmid}, {"conv", conv}, {"pending", outbox_.size()}});
  });
  return cmid;
}

void chat_client::request(json frame, reply_fn on_reply) {
  post([this, frame = std::move(frame), on_reply = std::move(on_reply)]() mutable {
    if (closed()) {
      on_reply(client_error("closed", "the session is closed"));
    } else if (ws_ && online()) {
      write(std::move(frame), std::move(on_reply), opts_.request_timeout);
    } else {
      waiting_.push_back(
        {std::move(frame), std::move(on_reply), steady::now() + opts_.request_timeout, ++order_});
    }
  });
}

void chat_client::read(const std::string& conv, uint64_t seq) {
  post([this, conv, seq] {
    if (read_sent_[conv] >= seq)
      return;
    read_sent_[conv] = seq;
    if (ws_ && online())
      write({{"t", "read"}, {"conv", conv}, {"seq", seq}}, nullptr, opts_.request_timeout, true);
    else
      reads_[conv] = seq;
  });
}

void chat_client::presence_sub(const std::vector<std::string>& users) {
  post([this, users] {
    for (auto& u : users)
      presence_.insert(u);
    if (ws_ && online())
      write({{"t", "presence_sub"}, {"users", users}}, nullptr, opts_.request_timeout, true);
  });
}

std::string chat_client::conv() const {
  std::lock_guard<std::mutex> g(mtx_);
  return conv_;
}

void chat_client::set_conv(const std::string& conv) {
  {
    std::lock_guard<std::mutex> g(mtx_);
    conv_ = conv;
  }
  post([this] { save_state(); });
}

uint64_t chat_client::top_seq(const std::string& conv) const {
  std::lock_guard<std::mutex> g(mtx_);
  auto it = top_.find(conv);
  return it == top_.end() ? 0 : it->second;
}

size_t chat_client::pending() const {
  std::lock_guard<std::mutex> g(mtx_);
  return outbox_size_;
}

bool chat_client::online() const {
  std::lock_guard<std::mutex> g(mtx_);
  return online_;
}

bool chat_client::stopping() const {
  std::lock_guard<std::mutex> g(mtx_);
  return stopping_;
}

bool chat_client::closed() const {
  std::lock_guard<std::mutex> g(mtx_);
  return closed_;
}

bool chat_client::wait_outbox_empty(ms timeout) {
  std::unique_lock<std::mutex> lock(mtx_);
  cv_.wait_for(lock, timeout, [&] { return outbox_size_ == 0 || closed_ || offline_; });
  return outbox_size_ == 0;
}

// ---- the worker: connection lifecycle --------------------------------------

void chat_client::run() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mtx_);
      if (stopping_)
        break;
      if (!ws_) {
        // Offline: sleep until the reconnect is due (or forever once closed),
        // waking for commands, which queue their work for the next auth.
        auto ready = [&] { return stopping_ || !commands_.empty(); };
        if (closed_)
          cv_.wait(lock, ready);
        else
          cv_.wait_until(lock, reconnect_at_, ready);
      }
    }
    run_commands();
    if (!ws_) {
      if (!closed() && steady::now() >= reconnect_at_ && !stopping())
        open();
      tick();
      continue;
    }
    // Online: frames as they come, commands and timers at least every 20 ms.
    bool drained = false;
    for (int i = 0; i < 64 && ws_; ++i) {
      auto f = ws_->next(ms(i == 0 ? 20 : 0));
      if (!f) {
        drained = true;
        break;
      }
      last_rx_ = steady::now();
      on_frame(*f);
    }
    if (ws_ && drained && ws_->wait_closed(ms(0))) {
      // Frames that came just before the close still count (bounded: a
      // closed connection receives nothing more).
      while (ws_) {
        auto f = ws_->next(ms(0));
        if (!f)
          break;
        on_frame(*f);
      }
      if (ws_) {
        auto code = ws_->close_code();
        on_closed(code ? *code : 1006, code ? "closed by the server" : "connection lost");
      }
    }
    tick();
  }
  // Stopping: what was shown is acked and saved; the outbox stays saved.
  if (ws_ && online() && iseq_ && *iseq_ > acked_)
    raw({{"t", "ack"}, {"iseq", *iseq_}});
  if (iseq_)
    acked_ = *iseq_;
  save_state();
  if (ws_) {
    ws_->close();
    ws_.reset();
  }
  std::lock_guard<std::mutex> g(mtx_);
  online_ = false;
}

void chat_client::run_commands() {
  while (true) {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> g(mtx_);
      if (commands_.empty())
        return;
      fn = std::move(commands_.front());
      commands_.pop_front();
    }
    fn();
  }
}

void chat_client::open() {
  set_state("connecting");
  try {
    ws_ = std::make_unique<imengine::net::ws_client>(opts_.host, opts_.port);
  } catch (const std::exception& e) {
    ws_.reset();
    schedule_reconnect(0, e.what());
    return;
  }
  ++gen_;
  last_rx_ = last_ping_ = steady::now();
  // Auth is the one blocking request: nothing else may go out before it.
  json reply;
  try {
    reply = ws_->request({{"t", "auth"}, {"user", opts_.user}, {"device", opts_.device},
                          {"token", opts_.token}},
                         opts_.request_timeout);
  } catch (const std::exception& e) {
    drop(std::string("auth: ") + e.what());
    return;
  }
  if (is_error(reply)) {
    auto code = reply.value("code", "");
    if (terminal_auth.count(code)) {
      ws_->close();
      ws_.reset();
      {
        std::lock_guard<std::mutex> g(mtx_);
        closed_ = true;
      }
      cv_.notify_all();
      set_state("closed", {{"code", code}, {"reason", "auth refused: " + reply.value("msg", code)}});
    } else {
      drop("auth: " + code);
    }
    return;
  }
  on_online(reply);
}

void chat_client::on_online(const json& f) {
  attempt_ = 0;
  uint64_t head = u64(f, "iseq");
  // A fresh state starts at the head (no replay of the whole inbox); a head
  // behind what we acked means the server's data was reset.
  if (!iseq_ || *iseq_ > head) {
    iseq_ = head;
    acked_ = head;
    inbuf_.clear();
    save_state();
  }
  {
    std::lock_guard<std::mutex> g(mtx_);
    online_ = true;
    offline_ = false;
  }
  json detail{{"node", f.value("node", "")}, {"iseq", head}, {"resending", outbox_.size()},
              {"again", was_offline_ && ever_online_}};
  ever_online_ = true;
  was_offline_ = false;
  set_state("online", detail);

  // In the order the user made them: unacked sends and requests made offline.
  std::vector<std::pair<uint64_t, std::function<void()>>> work;
  for (auto& item : outbox_)
    work.emplace_back(item.order, [this, cmid = item.cmid] { write_send(cmid); });
  for (auto& w : waiting_)
    work.emplace_back(w.order, [this, w]() mutable {
      auto left = std::chrono::duration_cast<ms>(w.deadline - steady::now());
      write(std::move(w.frame), std::move(w.on_reply), std::max(left, ms(0)));
    });
  waiting_.clear();
  std::sort(work.begin(), work.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& w : work)
    w.second();

  if (!presence_.empty())
    write({{"t", "presence_sub"}, {"users", presence_}}, nullptr, opts_.request_timeout, true);
  for (auto& [conv, seq] : reads_)
    write({{"t", "read"}, {"conv", conv}, {"seq", seq}}, nullptr, opts_.request_timeout, true);
  reads_.clear();
  if (*iseq_ < head)
    start_sync();
  // Timeline pushes missed while away are only in the timelines.
  for (auto& conv : timeline_)
    fill(conv);
}

void chat_client::drop(const std::string& reason) {
  // Forget the socket at once: a dead network never completes a close handshake.
  ws_.reset();
  on_closed(1006, reason);
}

void chat_client::on_closed(int code, const std::string& reason) {
  ws_.reset();
  ++gen_;
  {
    std::lock_guard<std::mutex> g(mtx_);
    online_ = false;
  }
  cv_.notify_all();
  ack_due_.reset();
  syncing_ = false;
  sync_retry_at_.reset();
  filling_.clear();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [req, p] : pending)
    if (!p.soft && p.on_reply)
      p.on_reply(client_error("disconnected", "connection closed (" + std::to_string(code) + ")"));
  if (stopping())
    return;
  if (code == close_replaced) {
    // Another client with the same (user, device) took over: reconnecting would fight it.
    {
      std::lock_guard<std::mutex> g(mtx_);
      closed_ = true;
    }
    cv_.notify_all();
    set_state("closed", {{"code", code},
                         {"reason", "replaced by a newer connection of " + opts_.user + "/"
                                      + opts_.device}});
    return;
  }
  schedule_reconnect(code, reason);
}

void chat_client::schedule_reconnect(int code, const std::string& reason) {
  auto base = static_cast<double>(opts_.backoff_base.count());
  auto cap = std::min(static_cast<double>(opts_.backoff_max.count()),
                      base * static_cast<double>(1u << std::min(attempt_, 16)));
  // Jitter: a crowd of clients dropped at once must not come back at once.
  std::uniform_real_distribution<double> half(cap / 2, cap);
  auto delay = ms(static_cast<int64_t>(half(rng())));
  ++attempt_;
  was_offline_ = true;
  {
    std::lock_guard<std::mutex> g(mtx_);
    offline_ = true;
  }
  cv_.notify_all();
  reconnect_at_ = steady::now() + delay;
  set_state("offline", {{"code", code}, {"reason", reason}, {"retry_in_ms", delay.count()},
                        {"pending", outbox_.size()}});
}

void chat_client::set_state(const std::string& state, json detail) {
  detail["state"] = state;
  emit("state", std::move(detail));
}

// Timers, every pass of the worker loop.
void chat_client::tick() {
  auto now = steady::now();
  // Requests without a reply in time.
  std::vector<pending_req> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(std::move(it->second));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& p : expired)
    if (!p.soft && p.on_reply)
      p.on_reply(client_error("timeout", "no reply in time"));
  // Requests made offline that waited too long.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->deadline <= now) {
      auto fn = std::move(it->on_reply);
      it = waiting_.erase(it);
      if (fn)
        fn(client_error("timeout", "offline: not sent in time"));
    } else {
      ++it;
    }
  }
  if (!ws_)
    return;
  if (ack_due_ && *ack_due_ <= now)
    send_ack();
  if (sync_retry_at_ && *sync_retry_at_ <= now) {
    sync_retry_at_.reset();
    start_sync();
  }
  std::vector<std::string> due;
  for (auto& item : outbox_)
    if (item.retry_at && *item.retry_at <= now)
      due.push_back(item.cmid);
  for (auto& cmid : due) {
    if (auto* item = find_item(cmid))
      item->retry_at.reset();
    write_send(cmid);
  }
  // A silent peer: ping it, and give up on it when the pong does not come.
  auto idle = now - last_rx_;
  if (ws_ && idle >= opts_.ping_idle + opts_.pong_timeout)
    drop("no answer to ping");
  else if (ws_ && idle >= opts_.ping_idle && now - last_ping_ >= opts_.ping_idle / 2) {
    last_ping_ = now;
    raw({{"t", "ping"}});
  }
}

// ---- writing frames, matching replies ---------------------------------------

void chat_client::raw(const json& frame) {
  if (ws_)
    ws_->send(frame);
}

void chat_client::write(json frame, reply_fn on_reply, ms timeout, bool soft) {
  // Frames without a reply on success still carry a req, so that an error
  // can be told apart and reported.
  auto req = ++req_;
  frame["req"] = req;
  pending_[req] = {std::move(on_reply), steady::now() + timeout, soft};
  raw(frame);
}

chat_client::out_item* chat_client::find_item(const std::string& cmid) {
  auto it = std::find_if(outbox_.begin(), outbox_.end(),
                         [&](const out_item& i) { return i.cmid == cmid; });
  return it == outbox_.end() ? nullptr : &*it;
}

void chat_client::write_send(const std::string& cmid) {
  auto* item = find_item(cmid);
  if (!item || !ws_ || !online())
    return;
  json frame{{"t", "send"}, {"cmid", item->cmid}, {"conv", item->conv}, {"type", item->type},
             {"body", item->body}};
  if (!item->mentions.empty())
    frame["mentions"] = item->mentions;
  auto gen = gen_;
  write(std::move(frame), [this, cmid, gen](const json& r) {
    auto* it = find_item(cmid);
    if (!it)
      return;   // acked already (a resend's dup)
    if (!is_error(r)) {
      finish_send(cmid, &r, nullptr);
      return;
    }
    auto code = r.value("code", "");
    if (code == "disconnected")
      return;   // written again after the reconnect
    if (code == "timeout") {
      if (gen != gen_)
        return;
      // No ack: the protocol's answer is the same frame again (same cmid); a
      // connection that keeps not answering is treated as dead.
      if (++it->timeouts >= 3) {
        it->timeouts = 0;
        drop("sends not acknowledged");
      } else {
        write_send(cmid);
      }
      return;
    }
    if (transient.count(code) && it->retries < opts_.send_max_retries) {
      ++it->retries;
      auto base = static_cast<double>(opts_.backoff_base.count());
      auto cap = std::min(static_cast<double>(opts_.backoff_max.count()),
                          base * static_cast<double>(1u << std::min(it->retries, 10)));
      std::uniform_real_distribution<double> half(cap / 2, cap);
      it->retry_at = steady::now() + ms(static_cast<int64_t>(half(rng())));
      return;
    }
    finish_send(cmid, nullptr, &r);
  }, opts_.send_ack_timeout);
}

void chat_client::finish_send(const std::string& cmid, const json* ack, const json* err) {
  auto it = std::find_if(outbox_.begin(), outbox_.end(),
                         [&](const out_item& i) { return i.cmid == cmid; });
  if (it == outbox_.end())
    return;
  auto item = std::move(*it);
  outbox_.erase(it);
  {
    std::lock_guard<std::mutex> g(mtx_);
    --outbox_size_;   // counts sends posted and not yet acked
  }
  cv_.notify_all();
  save_state();
  json d{{"cmid", item.cmid}, {"conv", item.conv}, {"body", item.body}};
  if (ack) {
    d["seq"] = u64(*ack, "seq");
    d["dup"] = ack->value("dup", false);
    emit("sent", std::move(d));
  } else {
    d["code"] = err->value("code", "");
    d["msg"] = err->value("msg", "");
    emit("send_failed", std::move(d));
  }
}

void chat_client::on_frame(const json& f) {
  if (!f.is_object())
    return;   // the engine speaks JSON to a JSON client; ignore what is not
  auto req = f.find("req");
  if (req != f.end() && req->is_number_integer()) {
    auto it = pending_.find(req->get<int64_t>());
    if (it != pending_.end()) {
      auto p = std::move(it->second);
      pending_.erase(it);
      if (p.on_reply)
        p.on_reply(f);
      else if (p.soft && is_error(f))
        emit("error", f);
      return;
    }
  }
  auto t = f.value("t", "");
  if (t == "msg") {
    if (f.contains("iseq"))
      on_inbox(f);
    else {
      timeline_.insert(f.value("conv", ""));
      deliver(f);
    }
  } else if (t == "ack") {
    // An ack whose req we no longer wait for (an earlier write's): match it by cmid.
    if (find_item(f.value("cmid", "")))
      finish_send(f.value("cmid", ""), &f, nullptr);
  } else if (t == "notify") {
    if (top_seq(f.value("conv", "")) > 0)
      fill(f.value("conv", ""));
    emit(t, f);
  } else if (t == "error") {
    emit("error", f);
  } else if (t != "pong") {
    emit(t, f);   // read, receipt, typing, presence, mute, mention, ...
  }
}

// ---- receiving --------------------------------------------------------------

void chat_client::on_inbox(const json& m) {
  auto iseq = u64(m, "iseq");
  if (!iseq_ || iseq <= *iseq_) {
    schedule_ack(true);   // a retransmit: the server missed our ack
    return;
  }
  if (iseq == *iseq_ + 1) {
    iseq_ = iseq;
    deliver(m);
    drain_inbox();
    schedule_ack();
  } else {
    inbuf_[iseq] = m;
    start_sync();
  }
}

void chat_client::drain_inbox() {
  while (!inbuf_.empty() && inbuf_.begin()->first <= *iseq_ + 1) {
    auto m = std::move(inbuf_.begin()->second);
    auto iseq = inbuf_.begin()->first;
    inbuf_.erase(inbuf_.begin());
    if (iseq == *iseq_ + 1) {
      iseq_ = iseq;
      deliver(m);
    }
  }
}

void chat_client::start_sync() {
  if (syncing_ || !ws_ || !online())
    return;
  syncing_ = true;
  sync_page(0);
}

// Pulls the inbox after the last contiguous iseq until the server says no more.
void chat_client::sync_page(uint32_t page) {
  auto after = *iseq_;
  auto gen = gen_;
  write({{"t", "sync"}, {"after", after}, {"limit", opts_.sync_limit}},
        [this, after, gen, page](const json& r) {
          if (gen != gen_)
            return;   // that connection is gone; the next auth syncs again
          if (is_error(r)) {
            syncing_ = false;
            emit("error", r);
            if (r.value("code", "") != "disconnected" && sync_retries_++ < 20)
              sync_retry_at_ = steady::now() + ms(1000);
            return;
          }
          uint64_t last = after;
          for (auto& m : r.value("msgs", json::array())) {
            on_inbox(m);
            last = std::max(last, u64(m, "iseq"));
          }
          if (r.value("more", false) && last > after && page + 1 < opts_.fill_max_pages) {
            sync_page(page + 1);
            return;
          }
          syncing_ = false;
          drain_inbox();
          schedule_ack();
          if (!inbuf_.empty()) {
            // A push beyond what sync returned: its inbox copy was not listed yet.
            if (sync_retries_++ < 20)
              sync_retry_at_ = steady::now() + ms(100 * sync_retries_);
          } else {
            sync_retries_ = 0;
          }
        },
        opts_.request_timeout);
}

// One cumulative ack for everything contiguous, shortly after a burst.
void chat_client::schedule_ack(bool force) {
  if (force)
    force_ack_ = true;
  if (!ack_due_)
    ack_due_ = steady::now() + opts_.ack_delay;
}

void chat_client::send_ack() {
  ack_due_.reset();
  if (!ws_ || !iseq_)
    return;
  if (*iseq_ > acked_ || force_ack_) {
    raw({{"t", "ack"}, {"iseq", *iseq_}});
    acked_ = *iseq_;
    save_state();
  }
  force_ack_ = false;
}

// Delivers in seq order per conversation: drops duplicates, holds and fills gaps.
void chat_client::deliver(const json& m) {
  auto conv = m.value("conv", "");
  auto seq = u64(m, "seq");
  uint64_t top;
  bool known;
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto it = top_.find(conv);
    known = it != top_.end();
    top = known ? it->second : 0;
  }
  if (known && seq <= top)
    return;
  if (known && seq > top + 1) {
    hold_[conv][seq] = m;
    fill(conv);
    return;
  }
  {
    std::lock_guard<std::mutex> g(mtx_);
    top_[conv] = seq;
  }
  emit("msg", m);
  drain_hold(conv);
}

void chat_client::drain_hold(const std::string& conv) {
  auto h = hold_.find(conv);
  if (h == hold_.end())
    return;
  auto& held = h->second;
  while (!held.empty()) {
    auto seq = held.begin()->first;
    auto top = top_seq(conv);
    if (seq <= top) {
      held.erase(held.begin());
      continue;
    }
    if (seq != top + 1)
      break;
    auto m = std::move(held.begin()->second);
    held.erase(held.begin());
    {
      std::lock_guard<std::mutex> g(mtx_);
      top_[conv] = seq;
    }
    emit("msg", m);
  }
  if (held.empty())
    hold_.erase(h);
}

// Fills a conversation's gap: history after the last contiguous seq.
void chat_client::fill(const std::string& conv) {
  if (filling_.count(conv) || !ws_ || !online())
    return;
  filling_.insert(conv);
  fill_page(conv, 0, gen_);
}

void chat_client::fill_page(const std::string& conv, uint32_t page, uint64_t gen) {
  auto after = top_seq(conv);
  write({{"t", "history"}, {"conv", conv}, {"after", after}, {"limit", history_limit}},
        [this, conv, page, gen, after](const json& r) {
          if (gen != gen_)
            return;
          bool more = false;
          if (is_error(r)) {
            emit("error", r);
          } else {
            for (auto& m : r.value("msgs", json::array()))
              deliver(m);
            more = r.value("more", false) && top_seq(conv) > after;
          }
          if (more && page + 1 < opts_.fill_max_pages) {
            fill_page(conv, page + 1, gen);
            return;
          }
          filling_.erase(conv);
          // What the history could not give (it may not be there yet, or
          // not be ours to read) is shown anyway, in order, rather than held
          // back for ever.
          auto h = hold_.find(conv);
          if (h != hold_.end() && !h->second.empty()) {
            auto first = h->second.begin()->first;
            {
              std::lock_guard<std::mutex> g(mtx_);
              top_[conv] = std::max(top_[conv], first - 1);
            }
            drain_hold(conv);
          }
        },
        opts_.request_timeout);
}

void chat_client::emit(const std::string& type, json data) {
  if (!on_event_)
    return;
  try {
    on_event_(event{type, std::move(data)});
  } catch (const std::exception&) {
    // one broken handler must not stop the protocol machinery
  }
}

// ---- state file -------------------------------------------------------------

void chat_client::load_state() {
  if (opts_.state_path.empty() || !std::filesystem::exists(opts_.state_path))
    return;
  std::ifstream in(opts_.state_path);
  json s = json::parse(in, nullptr, false);
  if (!s.is_object())
    throw std::runtime_error("state file " + opts_.state_path + " is not a JSON object");
  if (s.value("user", "") != opts_.user || s.value("device", "") != opts_.device)
    throw std::runtime_error("state file " + opts_.state_path + " belongs to "
                             + s.value("user", "?") + "/" + s.value("device", "?"));
  if (s.contains("iseq") && s["iseq"].is_number_unsigned()) {
    iseq_ = s["iseq"].get<uint64_t>();
    acked_ = *iseq_;
  }
  conv_ = s.value("conv", "");
  for (auto& j : s.value("outbox", json::array())) {
    out_item item;
    item.cmid = j.value("cmid", "");
    item.conv = j.value("conv", "");
    item.body = j.value("body", "");
    item.type = j.value("type", "text");
    item.mentions = j.value("mentions", std::vector<std::string>{});
    item.order = ++order_;
    if (!item.cmid.empty() && !item.conv.empty())
      outbox_.push_back(std::move(item));
  }
  outbox_size_ = outbox_.size();
}

void chat_client::save_state() {
  if (opts_.state_path.empty())
    return;
  json s{{"user", opts_.user}, {"device", opts_.device}, {"conv", conv()}};
  // The position acked (or, at stop, shown): what a restart must not replay.
  if (iseq_)
    s["iseq"] = acked_;
  json out = json::array();
  for (auto& item : outbox_) {
    json j{{"cmid", item.cmid}, {"conv", item.conv}, {"body", item.body}, {"type", item.type}};
    if (!item.mentions.empty())
      j["mentions"] = item.mentions;
    out.push_back(std::move(j));
  }
  s["outbox"] = std::move(out);
  // Written beside and renamed over: a crash mid-write leaves the old state whole.
  auto tmp = opts_.state_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << s.dump(2) << "\n";
    if (!f)
      return;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, opts_.state_path, ec);
}

} // namespace chat
