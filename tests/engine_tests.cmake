# tests of the engine layer
