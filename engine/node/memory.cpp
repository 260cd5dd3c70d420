#include "engine/node/memory.hpp"

#include <malloc.h>

#include <cstdint>
#include <utility>

#include "engine/metrics.hpp"

#ifdef IMENGINE_WITH_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif
#ifdef IMENGINE_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>

// jemalloc's defaults for this binary (MALLOC_CONF overrides them): a
// background thread returns dirty pages after 1 s, at once as far as the
// OS goes (no muzzy stage), so a storm's memory goes without our asking.
// (Declared extern "C" by jemalloc.h.)
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif

namespace imengine {

namespace {

#ifdef IMENGINE_WITH_TCMALLOC
size_t tcmalloc_property(const char* name) {
  size_t v = 0;
  return MallocExtension_GetNumericProperty(name, &v) ? v : 0;
}
#endif

#ifdef IMENGINE_WITH_JEMALLOC
// A jemalloc statistic, as of the last "epoch" refresh.
size_t jemalloc_stat(const char* name) {
  size_t v = 0, len = sizeof v;
  return mallctl(name, &v, &len, nullptr, 0) == 0 ? v : 0;
}
#endif

// What the allocator holds free that release() would give back: pages
// freed after the last release (actors that stopped later, timers that
// expired) would else stay until the node shrinks again.
size_t releasable() {
#ifdef IMENGINE_WITH_TCMALLOC
  return tcmalloc_property("tcmalloc.pageheap_free_bytes");
#else
  return 0;   // glibc does not say (fordblks counts trimmed pages too)
#endif
}

constexpr size_t release_above = size_t{4} << 20;

} // namespace

const char* allocator_name() {
#if defined(IMENGINE_WITH_TCMALLOC)
  return "tcmalloc";
#elif defined(IMENGINE_WITH_JEMALLOC)
  return "jemalloc";
#else
  return "system";
#endif
}

memory_releaser::memory_releaser(std::chrono::milliseconds period, std::function<bool()> shrank)
  : thread_([this, period, shrank = std::move(shrank)] {
      std::unique_lock<std::mutex> lock(mtx_);
      while (!wake_.wait_for(lock, period, [this] { return stop_; }))
        if (shrank() || releasable() > release_above)
          release();
    }) {
#ifdef IMENGINE_WITH_TCMALLOC
  // Idle threads keep their caches; the default lets them hold 32 MiB in
  // all, which a storm fills and nothing gives back (ReleaseFreeMemory
  // does not touch them). 8 MiB: the dm bench's throughput stayed within noise.
  MallocExtension_SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", size_t{8} << 20);
#endif
}

memory_releaser::~memory_releaser() {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void memory_releaser::release() {
#if defined(IMENGINE_WITH_TCMALLOC)
  MallocExtension_ReleaseFreeMemory();
#elif defined(IMENGINE_WITH_JEMALLOC)
  static_assert(MALLCTL_ARENAS_ALL == 4096, "arena.4096: every arena");
  mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
#else
  malloc_trim(0);
#endif
}

void render_heap_metrics(std::string& out) {
#if defined(IMENGINE_WITH_TCMALLOC)
  render_gauge(out, "imengine_heap_allocated_bytes", "Bytes in live heap allocations.",
               static_cast<double>(tcmalloc_property("generic.current_allocated_bytes")));
  render_gauge(out, "imengine_heap_free_bytes",
               "Bytes the allocator holds free in its page heap, mapped (in the RSS).",
               static_cast<double>(tcmalloc_property("tcmalloc.pageheap_free_bytes")));
  out += "# HELP imengine_heap_cached_bytes Bytes the allocator holds free in its caches of "
         "small objects (in the RSS).\n# TYPE imengine_heap_cached_bytes gauge\n";
  for (auto [cache, property] : {std::pair{"thread", "tcmalloc.current_total_thread_cache_bytes"},
                                 std::pair{"central", "tcmalloc.central_cache_free_bytes"},
                                 std::pair{"transfer", "tcmalloc.transfer_cache_free_bytes"}})
    out += std::string("imengine_heap_cached_bytes{cache=\"") + cache + "\"} "
           + std::to_string(tcmalloc_property(property)) + "\n";
#elif defined(IMENGINE_WITH_JEMALLOC)
  uint64_t epoch = 1;   // refreshes the statistics
  size_t len = sizeof epoch;
  mallctl("epoch", &epoch, &len, &epoch, len);
  auto allocated = jemalloc_stat("stats.allocated");
  render_gauge(out, "imengine_heap_allocated_bytes", "Bytes in live heap allocations.",
               static_cast<double>(allocated));
  // Resident but not allocated: free pages not yet purged, and metadata.
  auto resident = jemalloc_stat("stats.resident");
  render_gauge(out, "imengine_heap_free_bytes", "Bytes the allocator holds resident (at most), not allocated.",
               static_cast<double>(resident > allocated ? resident - allocated : 0));
#else
  auto mi = mallinfo2();
  render_gauge(out, "imengine_heap_allocated_bytes", "Bytes in live heap allocations.",
               static_cast<double>(mi.uordblks + mi.hblkhd));
  // Free chunks; malloc_trim gives back their whole pages, so not all in the RSS.
  render_gauge(out, "imengine_heap_free_bytes", "Bytes the allocator holds free.",
               static_cast<double>(mi.fordblks));
#endif
}

} // namespace imengine
