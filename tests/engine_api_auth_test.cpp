// The server API's key check and key file (engine/api_auth.hpp).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>

#include "engine/api_auth.hpp"
#include "tests/support/temp_dir.hpp"

using namespace imengine;

TEST_CASE("only `Bearer <the key>` matches") {
  api_key key("k3y-with-some-length");
  CHECK(key.matches("Bearer k3y-with-some-length"));
  CHECK(key.matches("bearer k3y-with-some-length"));   // the scheme is case-insensitive
  CHECK(key.matches("BEARER   k3y-with-some-length  "));
  CHECK_FALSE(key.matches(""));
  CHECK_FALSE(key.matches("Bearer"));
  CHECK_FALSE(key.matches("Bearer "));
  CHECK_FALSE(key.matches("k3y-with-some-length"));
  CHECK_FALSE(key.matches("Basic k3y-with-some-length"));
  CHECK_FALSE(key.matches("Bearer K3Y-with-some-length"));   // the key is not
  CHECK_FALSE(key.matches("Bearer k3y-with-some-lengt"));
  CHECK_FALSE(key.matches("Bearer k3y-with-some-length!"));
  CHECK_FALSE(key.matches(std::string("Bearer k3y-with-some-length\0", 29)));
}

TEST_CASE("an empty key matches nothing") {
  api_key key("");
  CHECK_FALSE(key.matches("Bearer "));
  CHECK_FALSE(key.matches("Bearer"));
  CHECK_FALSE(key.matches(""));
}

TEST_CASE("a key file: one trailing newline stripped, unreadable or empty refused") {
  imengine::testing::temp_dir dir;
  auto write = [&](const std::string& name, const std::string& content) {
    auto path = dir.str() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  };
  auto k = read_secret_file("--api-key-file", write("a", "secret\n"));
  REQUIRE(k);
  CHECK(*k == "secret");
  k = read_secret_file("--api-key-file", write("b", "secret\r\n"));
  REQUIRE(k);
  CHECK(*k == "secret");
  k = read_secret_file("--api-key-file", write("c", "secret"));
  REQUIRE(k);
  CHECK(*k == "secret");
  k = read_secret_file("--api-key-file", write("d", "se cret\n\n"));   // only one newline goes
  REQUIRE(k);
  CHECK(*k == "se cret\n");
  for (const auto& empty : {std::string{}, std::string("\n"), std::string("\r\n")}) {
    auto e = read_secret_file("--api-key-file", write("e", empty));
    REQUIRE_FALSE(e);
    CHECK(e.error().code == errc::bad_config);
  }
  auto missing = read_secret_file("--api-key-file", dir.str() + "/none");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::bad_config);
  CHECK(missing.error().msg.find("cannot be read") != std::string::npos);
}
