# End-to-end tests: the real engine binary in a child process, real
# WebSockets on 127.0.0.1, real LMDB in a temp dir.
add_library(imengine_test_support STATIC support/engine_process.cpp support/cluster.cpp)
target_include_directories(imengine_test_support PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(imengine_test_support PUBLIC imengine_net nlohmann_json::nlohmann_json)
target_compile_definitions(imengine_test_support PRIVATE IMENGINE_BINARY="$<TARGET_FILE:imengine>")

foreach(name session dm bad_input heartbeat crash read_state groups rooms supervision)
  imengine_test(integration_${name}_test
    SOURCES integration_${name}_test.cpp
    LIBS imengine_test_support imengine_core)
  add_dependencies(integration_${name}_test imengine)
endforeach()

# A cluster of real engine processes (cluster_fixture): the same contract
# across nodes, inter-node counters, a node killed and restarted.
imengine_test(integration_cluster_test
  SOURCES integration_cluster_test.cpp
  LIBS imengine_test_support imengine_core)
add_dependencies(integration_cluster_test imengine)

# The test support itself: free_ports, and engine_process::restart on the
# real binary (the cluster fixture needs an engine with cluster flags).
imengine_test(support_cluster_test SOURCES support_cluster_test.cpp LIBS imengine_test_support)
add_dependencies(support_cluster_test imengine)
