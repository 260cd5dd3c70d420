// Stored records (storage/record.hpp): a damaged value read back from LMDB
// must be refused, never crash; what decodes re-encodes to a value that
// decodes the same.
#include <cstdlib>
#include <string_view>

#include "storage/record.hpp"

namespace {

template <class Decode>
void round_trip(std::string_view bytes, Decode decode) {
  auto v = decode(bytes);
  if (!v)
    return;
  auto again = decode(imengine::storage::encode(*v));
  if (!again || imengine::storage::encode(*again) != imengine::storage::encode(*v))
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imengine::storage;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  round_trip(bytes, decode_message);
  round_trip(bytes, decode_conv_meta);
  round_trip(bytes, decode_user_conv);
  round_trip(bytes, decode_user_meta);
  round_trip(bytes, decode_dedupe);
  return 0;
}
