# tests of the net layer
