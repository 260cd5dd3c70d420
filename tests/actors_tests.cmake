# tests of the actors with real LMDB in a temp dir (no network)
imengine_test(actors_conversation_test SOURCES actors_conversation_test.cpp LIBS imengine_actors)
imengine_test(actors_connection_test SOURCES actors_connection_test.cpp LIBS imengine_actors)
