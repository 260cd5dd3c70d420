// msgpack binary frames from clients (engine/frame.hpp).
#include "fuzz/fuzz_frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  imengine::fuzz::check_frame(data, size, imengine::encoding::msgpack);
  return 0;
}
