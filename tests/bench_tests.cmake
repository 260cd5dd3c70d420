# A bounded smoke run of the load generator against the real engine:
# correctness only (nothing lost, duplicated or reordered), never speed.
imengine_test(bench_smoke_test
  SOURCES bench_smoke_test.cpp
  LIBS nlohmann_json::nlohmann_json)
add_dependencies(bench_smoke_test imengine imbench)
target_compile_definitions(bench_smoke_test PRIVATE
  IMENGINE_BINARY="$<TARGET_FILE:imengine>"
  IMBENCH_BINARY="$<TARGET_FILE:imbench>")
set_tests_properties(bench_smoke_test PROPERTIES TIMEOUT 120)
