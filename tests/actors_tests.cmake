# tests of the actors with real LMDB in a temp dir (no network)
imengine_test(actors_conversation_test SOURCES actors_conversation_test.cpp LIBS imengine_actors)
# every type and interface message that crosses nodes, through CAF's serializer
imengine_test(actors_wire_types_test SOURCES actors_wire_types_test.cpp LIBS imengine_actors)
# the connection actor with a recording frame sink (what is sent after a close)
imengine_test(actors_connection_test SOURCES actors_connection_test.cpp LIBS imengine_actors)
# the command line's defaults that depend on the machine (engine/node/cli.cpp)
imengine_test(node_cli_test SOURCES node_cli_test.cpp ../engine/node/cli.cpp
  ../engine/node/cluster_tls.cpp LIBS imengine_actors imengine_net OpenSSL::SSL)
