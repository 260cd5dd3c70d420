#include "engine/jwt.hpp"

#include "engine/base64url.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <optional>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace imengine {

namespace {

using json = nlohmann::json;

using digest = std::array<unsigned char, 32>;

// nullopt when OpenSSL fails: a zeroed digest would let a zero signature in.
std::optional<digest> hmac_sha256(std::string_view key, std::string_view data) {
  digest out{};
  unsigned int len = 0;
  static const unsigned char empty_key = 0;   // OpenSSL refuses a null key
  const void* k = key.empty() ? &empty_key : static_cast<const void*>(key.data());
  if (key.size() > static_cast<size_t>(INT_MAX)
      || !HMAC(EVP_sha256(), k, static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
               &len)
      || len != out.size())
    return std::nullopt;
  return out;
}

// A NumericDate claim in seconds, clamped to int64 (a claim far in the
// future stays far in the future, not negative). nullopt for non-numbers.
std::optional<int64_t> seconds_of(const json& v) {
  if (v.is_number_unsigned())
    return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
  if (v.is_number_integer())
    return v.get<int64_t>();
  if (!v.is_number_float())
    return std::nullopt;
  auto d = v.get<double>();
  if (d != d)   // NaN
    return std::nullopt;
  if (d >= 9.2e18)
    return INT64_MAX;
  if (d <= -9.2e18)
    return INT64_MIN;
  return static_cast<int64_t>(d);   // towards zero: a fraction never extends
}

std::optional<json> decode_json_part(std::string_view part) {
  auto text = b64url_decode(part);
  if (!text)
    return std::nullopt;
  auto obj = json::parse(*text, nullptr, false);
  if (!obj.is_object())
    return std::nullopt;
  return obj;
}

failure denied(std::string why) {
  return failure{errc::unauthorized, "invalid token: " + std::move(why)};
}

} // namespace

result<jwt_claims> verify_jwt(std::string_view token, std::string_view secret, int64_t now_s,
                              int64_t max_ttl_s) {
  try {
    auto dot1 = token.find('.');
    auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
      return denied("not three parts");
    auto signing_input = token.substr(0, dot2);
    auto header = decode_json_part(token.substr(0, dot1));
    if (!header)
      return denied("malformed header");
    // Pinning the algorithm rules out "alg":"none" and key confusion.
    auto alg = header->find("alg");
    if (alg == header->end() || *alg != "HS256")
      return denied("alg must be HS256");
    auto sig = b64url_decode(token.substr(dot2 + 1));
    auto expected = hmac_sha256(secret, signing_input);
    if (!expected)
      return failure{errc::internal, "HMAC failed"};
    if (!sig || sig->size() != expected->size()
        || CRYPTO_memcmp(sig->data(), expected->data(), expected->size()) != 0)
      return denied("bad signature");
    auto claims = decode_json_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
    if (!claims)
      return denied("malformed payload");
    auto sub = claims->find("sub");
    if (sub == claims->end() || !sub->is_string())
      return denied("sub must be a string");
    auto exp_claim = claims->find("exp");
    if (exp_claim == claims->end())
      return denied("exp is required");
    auto exp = seconds_of(*exp_claim);
    if (!exp)
      return denied("exp must be a number");
    if (*exp <= now_s)
      return denied("expired");
    if (max_ttl_s > 0 && *exp - now_s > max_ttl_s)
      return denied("exp more than " + std::to_string(max_ttl_s) + " s ahead (--jwt-max-ttl)");
    if (auto nbf_claim = claims->find("nbf"); nbf_claim != claims->end()) {
      auto nbf = seconds_of(*nbf_claim);
      if (!nbf)
        return denied("nbf must be a number");
      if (*nbf > now_s)
        return denied("not valid yet (nbf)");
    }
    return jwt_claims{sub->get<std::string>(), *exp};
  } catch (const std::exception&) {
    return denied("unreadable");   // bad_alloc only; nothing above throws otherwise
  }
}

std::string make_jwt(std::string_view sub, int64_t exp_s, std::string_view secret) {
  json header{{"alg", "HS256"}, {"typ", "JWT"}};
  json claims{{"sub", sub}, {"exp", exp_s}};
  auto input = b64url_encode(header.dump())
               + "." + b64url_encode(claims.dump(-1, ' ', false, json::error_handler_t::replace));
  auto sig = hmac_sha256(secret, input);
  if (!sig)
    return {};   // unverifiable anyway
  return input + "." + b64url_encode({reinterpret_cast<const char*>(sig->data()), sig->size()});
}

} // namespace imengine
