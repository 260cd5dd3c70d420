# tests of the actors layer
