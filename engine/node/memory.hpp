#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace imengine {

// Gives the allocator's free memory back to the OS after load went away,
// so that a storm of connections that has gone does not leave the RSS at
// its peak. Every `period` it asks the allocator to release what it holds
// free when `shrank` says the node got smaller since the last look (fewer
// connections or actors), or when tcmalloc's page heap holds over 4 MiB
// free. jemalloc (the default) also returns pages by itself, from its
// background thread. With tcmalloc it caps the threads' caches at 8 MiB in
// all; what tcmalloc keeps in its central and transfer caches of small
// objects no call of gperftools gives back (docs/BENCHMARKS.md).
class memory_releaser {
public:
  memory_releaser(std::chrono::milliseconds period, std::function<bool()> shrank);
  ~memory_releaser();   // stops the thread
  memory_releaser(const memory_releaser&) = delete;
  memory_releaser& operator=(const memory_releaser&) = delete;

  // Releases now (jemalloc: purges every arena; glibc: malloc_trim).
  static void release();

private:
  std::mutex mtx_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// The allocator this binary was linked with: "jemalloc", "tcmalloc" or
// "system" (glibc's, or a sanitizer's).
const char* allocator_name();

// Appends the allocator's figures as gauges: bytes in live allocations and
// bytes it holds free (mapped, so in the RSS), to tell a leak from a cache.
void render_heap_metrics(std::string& out);

} // namespace imengine
