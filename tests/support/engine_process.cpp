#include "tests/support/engine_process.hpp"
#include "tests/support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef IMENGINE_BINARY
#error "IMENGINE_BINARY must name the engine executable"
#endif

namespace imengine::testing {

engine_process::engine_process(const std::string& data_dir, std::vector<std::string> args)
  : data_dir_(data_dir), args_(std::move(args)) {
  start();
}

void engine_process::restart() {
  kill9();
  port_ = 0;
  start();
}

void engine_process::start() {
  int out[2];
  if (pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  std::vector<std::string> argv_s{IMENGINE_BINARY, "--host=127.0.0.1", "--port=0",
                                  "--data=" + data_dir_};
  argv_s.insert(argv_s.end(), args_.begin(), args_.end());
  // Built before fork: the child of a threaded parent must not allocate.
  std::vector<char*> argv;
  for (auto& s : argv_s)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  const long max_fd = sysconf(_SC_OPEN_MAX);
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  const rlimit file_limit{file_limit_, file_limit_};
  if (pid_ == 0) {
    if (file_limit_ != 0)
      setrlimit(RLIMIT_FSIZE, &file_limit);
    dup2(out[1], STDOUT_FILENO);
    // Only stdio goes to the engine: an inherited client socket would keep
    // a connection open after the test closed it, and an inherited pipe of
    // an engine started concurrently would hide that engine's exit.
    if (close_range(3, ~0u, 0) != 0)
      for (long fd = 3; fd < max_fd; ++fd)
        close(static_cast<int>(fd));
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  // Read stdout until the listening line, with a deadline.
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  const std::string marker = "://127.0.0.1:";   // after "listening on ws" or "wss"
  while (true) {
    auto line = buf.find("listening on ");
    auto pos = line == std::string::npos ? line : buf.find(marker, line);
    if (pos != std::string::npos && buf.find('\n', pos) != std::string::npos) {
      port_ = static_cast<uint16_t>(std::stoi(buf.substr(pos + marker.size())));
      tls_ = buf.compare(line, 16, "listening on wss") == 0;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      close(out[0]);
      kill9();
      throw std::runtime_error("engine did not start: " + buf);
    }
    char tmp[512];
    auto n = read(out[0], tmp, sizeof(tmp));
    if (n <= 0) {
      close(out[0]);
      kill9();
      throw std::runtime_error("engine exited before listening: " + buf);
    }
    buf.append(tmp, static_cast<size_t>(n));
  }
  // Nothing else is read from stdout: keep the pipe drained elsewhere by
  // closing it (the engine writes only the one line there).
  close(out[0]);
}

engine_process::~engine_process() {
  if (pid_ > 0)
    kill9();
}

bool engine_process::running() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int engine_process::terminate(std::chrono::milliseconds deadline) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(10ms);   // polling interval of the wait, not a guess
  }
  kill9();
  return -1;
}

void engine_process::kill9() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::unique_ptr<net::ws_client> engine_process::connect() {
  if (tls_)
    return std::make_unique<net::ws_client>("127.0.0.1", port_, "/ws",
                                            net::ws_client::tls_options{});
  return std::make_unique<net::ws_client>("127.0.0.1", port_);
}

std::unique_ptr<net::ws_client> engine_process::login(const std::string& user,
                                                      const std::string& device,
                                                      bool msgpack) {
  auto c = connect();
  json auth{{"t", "auth"}, {"user", user}, {"device", device}};
  auto reply = msgpack ? c->request_msgpack(auth) : c->request(auth);
  if (reply.value("t", "") != "auth_ok")
    throw std::runtime_error("login failed: " + reply.dump());
  return c;
}

std::pair<int, std::string> http_get(uint16_t port, const std::string& target) {
  auto r = http_request(port, "GET", target);
  return {r.status, std::move(r.body)};
}

bool wait_metric(uint16_t port, const std::string& text, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (true) {   // looks once at least, even with no time given
    if (http_get(port, "/metrics").second.find(text) != std::string::npos)
      return true;
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(20ms);   // poll interval
  }
}

std::optional<uint64_t> metric(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line))
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0
        && line[series.size()] == ' ')
      return static_cast<uint64_t>(std::stod(line.substr(series.size() + 1)));
  return std::nullopt;
}

std::optional<uint64_t> metric(uint16_t port, const std::string& series) {
  auto [status, body] = http_get(port, "/metrics");
  if (status != 200)
    return std::nullopt;
  return metric(body, series);
}

namespace {

// Pages through `frame` (sync or history) until `more` is false; `cursor`
// names the field of each message the next page starts after.
std::vector<json> all_pages(net::ws_client& c, json frame, const char* cursor) {
  std::vector<json> out;
  uint64_t after = 0;
  while (true) {
    frame["after"] = after;
    frame["limit"] = 500;
    auto page = c.request(frame);
    if (!page.contains("msgs"))
      throw std::runtime_error("paging failed: " + page.dump());
    for (auto& m : page["msgs"])
      out.push_back(m);
    if (!page["more"].get<bool>())
      return out;
    after = out.back()[cursor].get<uint64_t>();
  }
}

} // namespace

std::vector<json> whole_inbox(net::ws_client& c) {
  return all_pages(c, json{{"t", "sync"}}, "iseq");
}

std::vector<json> inbox_of_at_least(net::ws_client& c, size_t n, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  auto inbox = whole_inbox(c);
  while (inbox.size() < n && std::chrono::steady_clock::now() < until)
    inbox = whole_inbox(c);
  return inbox;
}

std::vector<json> whole_history(net::ws_client& c, const std::string& conv) {
  return all_pages(c, json{{"t", "history"}, {"conv", conv}}, "seq");
}

std::vector<json> whole_convs(net::ws_client& c, uint32_t limit) {
  std::vector<json> out;
  json frame{{"t", "convs"}, {"limit", limit}};
  for (size_t pages = 0; pages < 100000; ++pages) {
    auto page = c.request(frame);
    if (page.value("t", "") != "convs_result" || page["convs"].size() > limit)
      throw std::runtime_error("convs paging failed: " + page.dump());
    for (auto& row : page["convs"])
      out.push_back(row);
    if (!page["more"].get<bool>()) {
      if (page.contains("next"))
        throw std::runtime_error("a last page with a cursor: " + page.dump());
      return out;
    }
    frame["cursor"] = page.at("next");
  }
  throw std::runtime_error("convs paging does not end");
}

json send_frame(const std::string& conv, const std::string& cmid, const std::string& body) {
  return json{{"t", "send"}, {"conv", conv}, {"cmid", cmid}, {"type", "text"}, {"body", body}};
}

command_result run_engine_command(const std::string& args, int timeout_s) {
  auto cmd = "timeout " + std::to_string(timeout_s) + " " + IMENGINE_BINARY + " " + args + " 2>&1";
  command_result r;
  FILE* out = ::popen(cmd.c_str(), "r");
  if (!out)
    throw std::runtime_error("popen failed");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;)
    r.output.append(buf, n);
  int status = ::pclose(out);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

} // namespace imengine::testing
