#include "bench/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace imbench {

engine_child::engine_child(const std::string& path, const std::vector<std::string>& args) {
  char tmpl[] = "/tmp/imbench-XXXXXX";
  if (!mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  std::vector<std::string> argv_s{path, "--host=127.0.0.1", "--port=0", "--data=" + dir_ + "/data"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::filesystem::create_directories(dir_ + "/data");
  int out[2];
  if (pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int log = open((dir_ + "/engine.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out[1], STDOUT_FILENO);
    if (log >= 0)
      dup2(log, STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& s : argv_s)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string buf;
  const std::string marker = "listening on ws://";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    auto at = buf.find(marker);
    if (at != std::string::npos && buf.find('\n', at) != std::string::npos) {
      auto colon = buf.find(':', at + marker.size());
      port_ = static_cast<uint16_t>(std::stoi(buf.substr(colon + 1)));
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now()).count();
    pollfd p{out[0], POLLIN, 0};
    char tmp[512];
    ssize_t n = 0;
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0 ||
        (n = read(out[0], tmp, sizeof(tmp))) <= 0) {
      close(out[0]);
      stop();
      throw std::runtime_error("engine did not start (log in " + dir_ + "/engine.log): " + buf);
    }
    buf.append(tmp, static_cast<size_t>(n));
  }
  close(out[0]);   // the engine prints nothing else on stdout
}

int engine_child::stop() {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

engine_child::~engine_child() {
  stop();
  if (!dir_.empty() && !std::getenv("IMBENCH_KEEP_DATA")) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

} // namespace imbench
