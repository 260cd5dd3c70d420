# End-to-end tests: the real engine binary in a child process, real
# WebSockets on 127.0.0.1, real LMDB in a temp dir.
add_library(imengine_test_support STATIC support/engine_process.cpp support/cluster.cpp
  support/http_client.cpp support/https_client.cpp support/pki.cpp)
target_include_directories(imengine_test_support PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(imengine_test_support PUBLIC imengine_net nlohmann_json::nlohmann_json
  OpenSSL::SSL)
target_compile_definitions(imengine_test_support PRIVATE IMENGINE_BINARY="$<TARGET_FILE:imengine>")

foreach(name session dm bad_input heartbeat crash read_state groups rooms supervision api convs ops
    amend mentions torture storage net_hardening tls)
  imengine_test(integration_${name}_test
    SOURCES integration_${name}_test.cpp
    LIBS imengine_test_support imengine_core)
  add_dependencies(integration_${name}_test imengine)
endforeach()

# The ops test starts a node on the shipped example config.
target_compile_definitions(integration_ops_test PRIVATE
  IMENGINE_EXAMPLE_CONFIG="${PROJECT_SOURCE_DIR}/examples/imengine.conf")

# A storm of logins from imbench (the load generator) against the real
# engine, and its memory after the storm.
imengine_test(integration_memory_test
  SOURCES integration_memory_test.cpp
  LIBS imengine_test_support imengine_core)
add_dependencies(integration_memory_test imengine imbench)
target_compile_definitions(integration_memory_test PRIVATE
  IMBENCH_BINARY="$<TARGET_FILE:imbench>")

# A cluster of real engine processes (cluster_fixture): the same contract
# across nodes, inter-node counters, a node killed and restarted.
imengine_test(integration_cluster_test
  SOURCES integration_cluster_test.cpp
  LIBS imengine_test_support imengine_core)
add_dependencies(integration_cluster_test imengine)

# Cluster links over TLS: certificates made with the openssl CLI, a rogue
# node kept out, the start-up refusals of plain links off loopback.
imengine_test(integration_cluster_tls_test
  SOURCES integration_cluster_tls_test.cpp
  LIBS imengine_test_support imengine_core)
add_dependencies(integration_cluster_tls_test imengine)

# The test support itself: free_ports, and engine_process::restart on the
# real binary (the cluster fixture needs an engine with cluster flags).
imengine_test(support_cluster_test SOURCES support_cluster_test.cpp LIBS imengine_test_support)
add_dependencies(support_cluster_test imengine)

# Actor plugins: the examples (examples/plugins/) and two test plugins,
# a misbehaving one and one built against another API version.
add_library(misbehaving MODULE plugins/misbehaving.cpp)
add_library(other_api MODULE plugins/other_api.cpp)
foreach(p misbehaving other_api)
  target_include_directories(${p} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${p} PRIVATE CAF::core nlohmann_json::nlohmann_json)
  set_target_properties(${p} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden)
endforeach()
imengine_test(integration_plugins_test
  SOURCES integration_plugins_test.cpp
  LIBS imengine_test_support imengine_core)
add_dependencies(integration_plugins_test imengine misbehaving other_api echo_bot word_filter
                 offline_push webhook)
target_compile_definitions(integration_plugins_test PRIVATE
  MISBEHAVING_PLUGIN="$<TARGET_FILE:misbehaving>"
  OTHER_API_PLUGIN="$<TARGET_FILE:other_api>"
  ECHO_BOT_PLUGIN="$<TARGET_FILE:echo_bot>"
  WORD_FILTER_PLUGIN="$<TARGET_FILE:word_filter>"
  OFFLINE_PUSH_PLUGIN="$<TARGET_FILE:offline_push>"
  WEBHOOK_PLUGIN="$<TARGET_FILE:webhook>")

# The recall test reads a compacted copy of the engine's LMDB file after it
# stopped, to see that no live page holds a recalled body.
target_link_libraries(integration_amend_test PRIVATE PkgConfig::LMDB)

# The terminal client (examples/chat_cli) as a child process against the engine.
imengine_test(integration_chat_cli_test SOURCES integration_chat_cli_test.cpp
  LIBS imengine_test_support imengine_core)
target_compile_definitions(integration_chat_cli_test PRIVATE CHAT_CLI_BINARY="$<TARGET_FILE:chat_cli>")
add_dependencies(integration_chat_cli_test imengine chat_cli)
