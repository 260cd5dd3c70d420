#pragma once

#include <array>
#include <string>
#include <string_view>

#include "engine/result.hpp"

namespace imengine {

// The server API's key (--api-key). Held as its SHA-256 digest: a check
// hashes the presented key and compares two digests of equal length in
// constant time, so neither the key's bytes nor its length leak through
// the time a refusal takes.
class api_key {
public:
  explicit api_key(std::string_view key);

  // Whether an Authorization header value is `Bearer <the key>` (the
  // scheme case-insensitive, as RFC 7235 has it).
  bool matches(std::string_view authorization) const noexcept;

private:
  std::array<unsigned char, 32> digest_{};
  bool valid_ = false;   // false if hashing failed: nothing matches
};

// The secret a file flag (--api-key-file, --jwt-secret-file) names: its
// content with one trailing newline ("\n" or "\r\n") stripped. Errors:
// bad_config, naming `flag` and the path, when the file cannot be read or
// holds nothing.
result<std::string> read_secret_file(const std::string& flag, const std::string& path);

} // namespace imengine
