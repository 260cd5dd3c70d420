#pragma once

// chat_client: one user's session with imengine, on top of net::ws_client.
//
// The C++ counterpart of examples/web/imclient.js (docs/PROTOCOL.md gives
// the frames). What it takes care of, so a front end does not have to:
// - connect + auth, reconnect with capped exponential backoff and jitter
//   after a drop, but not after a terminal close (4001 replaced, auth refused);
// - an outbox of unacked sends: the cmid is made once, and the same frame is
//   written again, in the order the sends were made, after a reconnect;
// - inbox order: pushes deduplicated by conv+seq, iseq gaps filled with
//   `sync` after the last contiguous iseq, cumulative and coalesced acks;
// - timeline (room) order: seq gaps filled with `history`;
// - a small JSON state file (last acked iseq, current conversation, outbox)
//   so that a restart neither replays the inbox nor loses unsent lines.
//
// All protocol state lives on one worker thread; the public members only
// post work to it and are safe to call from any thread. Events are reported
// from the worker thread, with no lock held.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace imengine::net {
class ws_client;
}

namespace chat {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// Identifier checks and builders, as docs/PROTOCOL.md defines them.
bool valid_id(const std::string& s);             // user, device: 1-64 of [A-Za-z0-9_.@-]
bool valid_conv(const std::string& s);           // dm:a:b (a < b), g:id, r:id
std::string dm_id(const std::string& a, const std::string& b);   // dm:<lower>:<higher>
// `@name` words of a text (at its start or after a space), each once, in
// order; trailing '.' ',' ':' ';' '!' '?' are punctuation, not part of the name.
std::vector<std::string> mentions_of(const std::string& text);

struct client_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string user;
  std::string device = "cli";
  std::string token;
  std::string state_path;   // empty: nothing is persisted

  ms backoff_base{500};
  ms backoff_max{15000};
  ms ack_delay{50};           // pushes arriving within this window share one ack
  ms request_timeout{10000};
  ms send_ack_timeout{10000}; // a send without an ack by then is written again
  ms ping_idle{20000};        // silent this long: we ping; plus pong_timeout: we reconnect
  ms pong_timeout{10000};
  uint32_t sync_limit = 100;
  uint32_t fill_max_pages = 100;   // bound on the pages one gap fill pulls
  int send_max_retries = 20;       // transient send errors retried this often
};

// What the session reports. `type` is one of
//   state        {"state": connecting|online|offline|closed, "node", "retry_in_ms",
//                 "code", "reason", "resending"}
//   msg          a message, in order and once (a push, a sync page or a gap fill)
//   sent         {"cmid","conv","body","seq","dup"}: a send was acked
//   send_failed  {"cmid","conv","body","code","msg"}: refused for good, left the outbox
//   queued       {"cmid","conv","pending"}: a send made while offline
//   error        {"code","msg","t"}: a server error nobody waits for
//   or the type of any other push (receipt, read, typing, presence, mute, mention, notify).
struct event {
  std::string type;
  json data;
};

class chat_client {
public:
  using handler = std::function<void(const event&)>;
  // Receives the reply to a request, or an {"t":"error"} frame (codes from
  // the server, or "timeout", "disconnected", "closed" from the client).
  using reply_fn = std::function<void(const json&)>;

  // Loads the state file. Throws std::runtime_error if it exists but is not
  // a state of this user and device (sending another user's outbox would be
  // worse than refusing to start).
  chat_client(client_options opts, handler on_event);
  ~chat_client();   // stop()
  chat_client(const chat_client&) = delete;
  chat_client& operator=(const chat_client&) = delete;

  void start();
  // Acks what was shown, saves the state, closes the connection.
  void stop();

  // Queues a message (saved to the state file at once) and returns its cmid.
  std::string send(const std::string& conv, const std::string& body,
                   std::vector<std::string> mentions = {});
  // A request frame without "req": sent now when online, else after the next
  // auth (or answered "timeout" after request_timeout).
  void request(json frame, reply_fn on_reply);
  // Marks a conversation read up to seq (forward only; kept while offline).
  void read(const std::string& conv, uint64_t seq);
  // Presence of users, subscribed again after every reconnect.
  void presence_sub(const std::vector<std::string>& users);

  // The conversation the user is in, kept in the state file.
  std::string conv() const;
  void set_conv(const std::string& conv);
  // Highest seq shown of a conversation (0: none).
  uint64_t top_seq(const std::string& conv) const;
  size_t pending() const;   // unacked sends
  bool online() const;
  bool closed() const;      // terminal: will not reconnect
  // Waits until the outbox is empty, or the session is offline (a connect
  // attempt failed, or the connection dropped) or closed for good, or the
  // timeout passes; true if the outbox is empty. Meant for leaving: lines
  // typed just before get their ack when the engine is there.
  bool wait_outbox_empty(ms timeout);

  const client_options& options() const { return opts_; }

private:
  struct out_item {
    std::string cmid, conv, body, type = "text";
    std::vector<std::string> mentions;
    uint64_t order = 0;
    int retries = 0;    // transient errors so far
    int timeouts = 0;   // writes without an ack in time
    std::optional<steady::time_point> retry_at;
  };
  struct pending_req {
    reply_fn on_reply;
    steady::time_point deadline;
    bool soft = false;   // a frame whose success has no reply (read, presence_sub)
  };
  struct waiting_req {
    json frame;
    reply_fn on_reply;
    steady::time_point deadline;
    uint64_t order;
  };

  // Worker thread.
  void run();
  void post(std::function<void()> fn);
  void run_commands();
  bool stopping() const;
  void open();
  void on_online(const json& auth_ok);
  void drop(const std::string& reason);
  void on_closed(int code, const std::string& reason);
  void schedule_reconnect(int code, const std::string& reason);
  void set_state(const std::string& state, json detail = json::object());
  void tick();

  void raw(const json& frame);
  void write(json frame, reply_fn on_reply, ms timeout, bool soft = false);
  void write_send(const std::string& cmid);
  void finish_send(const std::string& cmid, const json* ack, const json* err);
  out_item* find_item(const std::string& cmid);

  void on_frame(const json& f);
  void on_inbox(const json& m);
  void drain_inbox();
  void start_sync();
  void sync_page(uint32_t page);
  void schedule_ack(bool force = false);
  void send_ack();
  void deliver(const json& m);
  void drain_hold(const std::string& conv);
  void fill(const std::string& conv);
  void fill_page(const std::string& conv, uint32_t page, uint64_t gen);
  void emit(const std::string& type, json data);

  void load_state();
  void save_state();

  client_options opts_;
  handler on_event_;

  // Shared with the callers' threads, under mtx_.
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> commands_;
  bool stopping_ = false;
  bool started_ = false;
  bool online_ = false;
  bool offline_ = false;   // since the last failed attempt or drop, until the next auth_ok
  bool closed_ = false;
  std::string conv_;
  std::map<std::string, uint64_t> top_;   // conv -> highest contiguous seq shown
  size_t outbox_size_ = 0;
  std::thread worker_;

  // Worker thread only.
  std::unique_ptr<imengine::net::ws_client> ws_;
  uint64_t gen_ = 0;   // connection generation: late callbacks of an old socket are ignored
  int64_t req_ = 0;
  std::map<int64_t, pending_req> pending_;
  std::vector<waiting_req> waiting_;
  std::vector<out_item> outbox_;
  uint64_t order_ = 0;
  int attempt_ = 0;
  steady::time_point reconnect_at_{};
  steady::time_point last_rx_{};
  steady::time_point last_ping_{};
  bool ever_online_ = false;
  bool was_offline_ = false;

  std::optional<uint64_t> iseq_;   // highest contiguous inbox position shown
  uint64_t acked_ = 0;
  std::optional<steady::time_point> ack_due_;
  bool force_ack_ = false;
  std::map<uint64_t, json> inbuf_;   // iseq -> message that came ahead of a gap
  bool syncing_ = false;
  int sync_retries_ = 0;
  std::optional<steady::time_point> sync_retry_at_;

  std::map<std::string, std::map<uint64_t, json>> hold_;   // conv -> seq -> message ahead of a gap
  std::set<std::string> timeline_;   // conversations pushed without iseq
  std::set<std::string> filling_;
  std::map<std::string, uint64_t> reads_;       // reads made offline, sent after auth
  std::map<std::string, uint64_t> read_sent_;
  std::set<std::string> presence_;
};

} // namespace chat
