"""The test suite: unit tests, and integration tests against the real servers."""
