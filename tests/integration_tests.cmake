# tests of the integration layer
