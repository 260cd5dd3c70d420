// The CAF worker count the engine picks when nobody set one.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <caf/settings.hpp>

#include "engine/node/cli.hpp"

using namespace imengine;

namespace {

size_t workers(cli_config& cfg) {
  auto n = caf::get_if<size_t>(&cfg.content, "scheduler.max-threads");
  REQUIRE(n);
  return *n;
}

} // namespace

TEST_CASE("one CAF worker per core the io threads leave, at least one") {
  for (auto [cores, io, expected] : {std::tuple{2u, 1u, size_t{1}}, {1u, 1u, size_t{1}},
                                     {8u, 1u, size_t{7}}, {8u, 3u, size_t{5}}, {4u, 4u, size_t{1}},
                                     {0u, 1u, size_t{1}}}) {
    CAPTURE(cores);
    CAPTURE(io);
    cli_config cfg;
    cfg.engine.io_threads = io;
    default_worker_count(cfg, cores);
    CHECK(workers(cfg) == expected);
  }
}

TEST_CASE("a worker count from the flags or the config file stays") {
  cli_config cfg;
  char prog[] = "imengine";
  char flag[] = "--scheduler.max-threads=3";
  char* argv[] = {prog, flag, nullptr};
  REQUIRE(!cfg.parse(2, argv));
  default_worker_count(cfg, 2);
  CHECK(workers(cfg) == 3);
}
