# tests of the storage layer
