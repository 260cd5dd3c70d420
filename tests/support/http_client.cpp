#include "tests/support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace imengine::testing {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

} // namespace

http_client::http_client(uint16_t port, std::chrono::milliseconds timeout) : timeout_(timeout) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0)
    throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect failed");
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

http_client::~http_client() {
  if (fd_ >= 0)
    close(fd_);
}

void http_client::send_all(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      throw std::runtime_error("send failed");
    sent += static_cast<size_t>(n);
  }
}

http_response http_client::request(const std::string& method, const std::string& target,
                                   const std::string& body, const http_headers& headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers)
    req += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size())
           + "\r\n";
  req += "\r\n";
  req += body;
  return raw(req);
}

http_response http_client::raw(const std::string& bytes) {
  send_all(bytes);
  return read_response();
}

http_response http_client::read_response() {
  auto until = std::chrono::steady_clock::now() + timeout_;
  bool eof = false;
  // Reads more into buf_; false at EOF.
  auto fill = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
      throw std::runtime_error("timeout waiting for an HTTP answer: " + buf_);
    char tmp[16384];
    auto n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      eof = true;
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  };
  size_t head_end;
  while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
    if (!fill())
      throw std::runtime_error("connection closed before an HTTP answer: " + buf_);
  http_response out;
  auto head = buf_.substr(0, head_end);
  buf_.erase(0, head_end + 4);
  if (head.rfind("HTTP/1.1 ", 0) != 0 && head.rfind("HTTP/1.0 ", 0) != 0)
    throw std::runtime_error("bad HTTP answer: " + head);
  out.status = std::stoi(head.substr(9, 3));
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    auto next = head.find("\r\n", pos + 2);
    auto line = head.substr(pos + 2, next == std::string::npos ? std::string::npos
                                                                : next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      out.headers[lower(line.substr(0, colon))] = value;
    }
    pos = next;
  }
  if (auto cl = out.headers.find("content-length"); cl != out.headers.end()) {
    auto len = static_cast<size_t>(std::stoull(cl->second));
    while (buf_.size() < len)
      if (!fill())
        throw std::runtime_error("connection closed inside an HTTP body");
    out.body = buf_.substr(0, len);
    buf_.erase(0, len);
  } else {
    while (!eof && fill()) {
    }
    out.body = std::move(buf_);
    buf_.clear();
  }
  return out;
}

bool http_client::closed_by_server() {
  auto until = std::chrono::steady_clock::now() + timeout_;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char tmp[4096];
      auto n = recv(fd_, tmp, sizeof(tmp), 0);
      if (n <= 0)
        return true;
    }
  }
  return false;
}

http_response http_request(uint16_t port, const std::string& method, const std::string& target,
                           const std::string& body, const http_headers& headers) {
  http_client c(port);
  auto with_close = headers;
  with_close.emplace_back("Connection", "close");
  return c.request(method, target, body, with_close);
}

} // namespace imengine::testing
