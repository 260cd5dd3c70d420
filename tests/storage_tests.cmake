# tests of the storage layer (real LMDB in a temp dir)
imengine_test(storage_store_test SOURCES storage_store_test.cpp LIBS imengine_storage)
