#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace imengine {

// Gives the allocator's free memory back to the OS after load went away.
// tcmalloc keeps freed pages for reuse, so a storm of connections that
// has gone leaves the RSS at its peak; every `period` this asks the
// allocator to release what it holds free, when `shrank` says the node
// got smaller since the last look (fewer connections or actors).
class memory_releaser {
public:
  memory_releaser(std::chrono::milliseconds period, std::function<bool()> shrank);
  ~memory_releaser();   // stops the thread
  memory_releaser(const memory_releaser&) = delete;
  memory_releaser& operator=(const memory_releaser&) = delete;

  // Releases now (also without tcmalloc: glibc's malloc_trim).
  static void release();

private:
  std::mutex mtx_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace imengine
