#include "engine/api_auth.hpp"

#include <cctype>
#include <fstream>
#include <iterator>
#include <optional>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace imengine {

namespace {

using digest = std::array<unsigned char, 32>;

std::optional<digest> sha256(std::string_view data) {
  digest out{};
  unsigned int len = 0;
  if (!EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr)
      || len != out.size())
    return std::nullopt;
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

} // namespace

api_key::api_key(std::string_view key) {
  if (auto d = sha256(key)) {
    digest_ = *d;
    valid_ = !key.empty();
  }
}

bool api_key::matches(std::string_view authorization) const noexcept {
  constexpr std::string_view scheme = "bearer ";
  if (!valid_ || authorization.size() < scheme.size()
      || !iequals(authorization.substr(0, scheme.size()), scheme))
    return false;
  auto presented = authorization.substr(scheme.size());
  while (!presented.empty() && (presented.front() == ' ' || presented.front() == '\t'))
    presented.remove_prefix(1);
  while (!presented.empty() && (presented.back() == ' ' || presented.back() == '\t'))
    presented.remove_suffix(1);
  auto d = sha256(presented);
  return d && CRYPTO_memcmp(d->data(), digest_.data(), digest_.size()) == 0;
}

result<std::string> read_secret_file(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return failure{errc::bad_config, flag + " " + path + " cannot be read"};
  std::string key{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad())
    return failure{errc::bad_config, flag + " " + path + " cannot be read"};
  if (!key.empty() && key.back() == '\n')
    key.pop_back();
  if (!key.empty() && key.back() == '\r')
    key.pop_back();
  if (key.empty())
    return failure{errc::bad_config, flag + " " + path + " holds no secret"};
  return key;
}

} // namespace imengine
