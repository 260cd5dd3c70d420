# tests of the net layer
imengine_test(net_server_test SOURCES net_server_test.cpp LIBS imengine_net)
imengine_test(net_gather_stream_test SOURCES net_gather_stream_test.cpp LIBS imengine_net)
