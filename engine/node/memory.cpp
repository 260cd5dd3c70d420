#include "engine/node/memory.hpp"

#include <malloc.h>

#ifdef IMENGINE_WITH_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

namespace imengine {

memory_releaser::memory_releaser(std::chrono::milliseconds period, std::function<bool()> shrank)
  : thread_([this, period, shrank = std::move(shrank)] {
      std::unique_lock<std::mutex> lock(mtx_);
      while (!wake_.wait_for(lock, period, [this] { return stop_; }))
        if (shrank())
          release();
    }) {
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
#ifdef IMENGINE_WITH_TCMALLOC
  MallocExtension_ReleaseFreeMemory();
#else
  malloc_trim(0);
#endif
}

} // namespace imengine
