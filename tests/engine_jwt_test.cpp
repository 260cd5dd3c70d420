#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "engine/jwt.hpp"

using namespace imengine;

namespace {

constexpr int64_t now = 1763800000;
const std::string secret = "s3cret";

// An independent encoder (OpenSSL's base64, then the URL alphabet) so the
// tests do not trust the code under test to build their tokens.
std::string b64url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(in.data()),
                           static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  for (auto& c : out)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string sign(const std::string& input, const std::string& key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string token(const std::string& header, const std::string& payload,
                  const std::string& key = secret) {
  auto input = b64url(header) + "." + b64url(payload);
  return input + "." + b64url(sign(input, key));
}

const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";

// "<ok:sub>" or the failure message, asserting the code is unauthorized.
std::string outcome(const std::string& tok, int64_t at = now, int64_t max_ttl = 0) {
  auto r = verify_jwt(tok, secret, at, max_ttl);
  if (r)
    return "<ok:" + r->sub + ">";
  if (r.error().code != errc::unauthorized)
    return "<wrong code>";
  return r.error().msg;
}

bool rejected_for(const std::string& tok, const std::string& reason) {
  auto msg = outcome(tok);
  CAPTURE(msg);
  return msg.find(reason) != std::string::npos && msg.rfind("<ok", 0) != 0;
}

} // namespace

TEST_CASE("a well-formed token yields its sub") {
  CHECK(outcome(token(hs256, R"({"sub":"alice","exp":1763800060})")) == "<ok:alice>");
  CHECK(outcome(token(R"({"alg":"HS256"})", R"({"sub":"bob","exp":1.8e9})")) == "<ok:bob>");
}

TEST_CASE("make_jwt tokens verify, and match an independent signer") {
  auto t = make_jwt("alice", now + 60, secret);
  CHECK(outcome(t) == "<ok:alice>");
  CHECK(std::count(t.begin(), t.end(), '.') == 2);
  CHECK(t.find('=') == std::string::npos);
  CHECK(t.find('+') == std::string::npos);
  CHECK(t.find('/') == std::string::npos);
  // re-sign make_jwt's own header and payload with the test's HMAC
  auto input = t.substr(0, t.rfind('.'));
  CHECK(t.substr(t.rfind('.') + 1) == b64url(sign(input, secret)));
  CHECK(rejected_for(make_jwt("alice", now + 60, "other"), "bad signature"));
}

TEST_CASE("expiry: exp must lie after now") {
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":1763799999})"), "expired"));
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":1763800000})"), "expired"));
  CHECK(outcome(token(hs256, R"({"sub":"alice","exp":1763800001})")) == "<ok:alice>");
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":1763799999.5})"), "expired"));
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":-5})"), "expired"));
  CHECK(outcome(token(hs256, R"({"sub":"alice","exp":18446744073709551615})")) == "<ok:alice>");
  CHECK(rejected_for(make_jwt("alice", now, secret), "expired"));
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":"2099"})"), "exp must be a number"));
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":null})"), "exp must be a number"));
}

TEST_CASE("exp is required, nbf honoured, --jwt-max-ttl caps exp") {
  CHECK(rejected_for(token(hs256, R"({"sub":"alice"})"), "exp is required"));
  auto r = verify_jwt(token(hs256, R"({"sub":"alice","exp":1763800060})"), secret, now);
  REQUIRE(r);
  CHECK(r->exp_s == 1763800060);
  // nbf: valid from that second on
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":1763800060,"nbf":1763800001})"),
                     "not valid yet"));
  CHECK(outcome(token(hs256, R"({"sub":"alice","exp":1763800060,"nbf":1763800000})"))
        == "<ok:alice>");
  CHECK(outcome(token(hs256, R"({"sub":"alice","exp":1763800060,"nbf":1})")) == "<ok:alice>");
  CHECK(rejected_for(token(hs256, R"({"sub":"alice","exp":1763800060,"nbf":"now"})"),
                     "nbf must be a number"));
  // max ttl: exp at most that far ahead; 0 is no cap
  auto in_hour = token(hs256, R"({"sub":"alice","exp":1763803600})");
  CHECK(outcome(in_hour, now, 3600) == "<ok:alice>");
  CHECK(outcome(in_hour, now, 3599).find("--jwt-max-ttl") != std::string::npos);
  auto forever = token(hs256, R"({"sub":"alice","exp":18446744073709551615})");
  CHECK(outcome(forever, now, 0) == "<ok:alice>");
  CHECK(outcome(forever, now, 86400).find("--jwt-max-ttl") != std::string::npos);
  CHECK(outcome(token(hs256, R"({"sub":"alice","exp":1e300})"), now, 86400)
            .find("--jwt-max-ttl")
        != std::string::npos);
}

TEST_CASE("tampering breaks the signature") {
  auto good = token(hs256, R"({"sub":"alice","exp":1763800060})");
  auto forged_payload = b64url(R"({"sub":"admin","exp":1763800060})");
  auto dot1 = good.find('.');
  auto dot2 = good.rfind('.');
  CHECK(rejected_for(good.substr(0, dot1 + 1) + forged_payload + good.substr(dot2),
                     "bad signature"));
  auto flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'Q' : 'A';
  CHECK(rejected_for(flipped, "bad signature"));
  CHECK(rejected_for(good.substr(0, dot2 + 1), "bad signature"));            // empty signature
  CHECK(rejected_for(good.substr(0, good.size() - 2), "bad signature"));     // truncated
  CHECK(rejected_for(token(hs256, R"({"sub":"alice"})", "wrong key"), "bad signature"));
  // 32 bytes take 43 chars with 2 unused bits; setting them gives a second
  // spelling of the same signature, which must not verify.
  const std::string alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto respelled = good;
  respelled.back() = alphabet[alphabet.find(good.back()) | 1];
  REQUIRE(respelled != good);
  CHECK(rejected_for(respelled, "bad signature"));
}

TEST_CASE("only HS256 is accepted") {
  CHECK(rejected_for(token(R"({"alg":"none"})", R"({"sub":"alice"})"), "alg must be HS256"));
  CHECK(rejected_for(b64url(R"({"alg":"none"})") + "." + b64url(R"({"sub":"alice"})") + ".",
                     "alg must be HS256"));
  CHECK(rejected_for(token(R"({"alg":"HS512"})", R"({"sub":"alice"})"), "alg must be HS256"));
  CHECK(rejected_for(token(R"({"alg":"hs256"})", R"({"sub":"alice"})"), "alg must be HS256"));
  CHECK(rejected_for(token(R"({"typ":"JWT"})", R"({"sub":"alice"})"), "alg must be HS256"));
  CHECK(rejected_for(token(R"({"alg":256})", R"({"sub":"alice"})"), "alg must be HS256"));
}

TEST_CASE("sub must be a string") {
  CHECK(rejected_for(token(hs256, R"({"exp":1763800060})"), "sub must be a string"));
  CHECK(rejected_for(token(hs256, R"({"sub":42})"), "sub must be a string"));
  CHECK(rejected_for(token(hs256, R"({"sub":["alice"]})"), "sub must be a string"));
}

TEST_CASE("structural garbage is rejected, never thrown") {
  auto good = token(hs256, R"({"sub":"alice","exp":1763800060})");
  CHECK(rejected_for("", "not three parts"));
  CHECK(rejected_for("abc", "not three parts"));
  CHECK(rejected_for("a.b", "not three parts"));
  CHECK(rejected_for(good + ".x", "not three parts"));
  CHECK(rejected_for("..", "malformed header"));
  CHECK(rejected_for("!!!." + good.substr(good.find('.') + 1), "malformed header"));
  CHECK(rejected_for(b64url("not json") + ".e30.", "malformed header"));
  CHECK(rejected_for(b64url("[1]") + ".e30.", "malformed header"));
  // padding is not base64url-without-padding
  auto padded = good;
  padded.insert(padded.find('.'), "=");
  CHECK(rejected_for(padded, "malformed header"));
  // a signed payload that is not JSON
  CHECK(rejected_for(token(hs256, "sub=alice"), "malformed payload"));
  CHECK(rejected_for(token(hs256, "\"alice\""), "malformed payload"));
}
