# tests of the engine layer
imengine_test(engine_ids_test SOURCES engine_ids_test.cpp LIBS imengine_core)
imengine_test(engine_frame_test SOURCES engine_frame_test.cpp LIBS imengine_core)
imengine_test(engine_frame_writer_test SOURCES engine_frame_writer_test.cpp LIBS imengine_core)
imengine_test(engine_metrics_test SOURCES engine_metrics_test.cpp LIBS imengine_core)
# OpenSSL too: the test signs hand-made tokens independently of make_jwt.
imengine_test(engine_jwt_test SOURCES engine_jwt_test.cpp LIBS imengine_core OpenSSL::Crypto)
imengine_test(engine_cluster_test SOURCES engine_cluster_test.cpp LIBS imengine_core)
# the server API's pure half: target and body parsing, the key check
imengine_test(engine_api_codec_test SOURCES engine_api_codec_test.cpp LIBS imengine_core)
imengine_test(engine_api_auth_test SOURCES engine_api_auth_test.cpp LIBS imengine_core)
imengine_test(engine_conv_list_test SOURCES engine_conv_list_test.cpp LIBS imengine_core)
imengine_test(engine_amend_test SOURCES engine_amend_test.cpp LIBS imengine_core)
imengine_test(engine_mentions_test SOURCES engine_mentions_test.cpp LIBS imengine_core)
