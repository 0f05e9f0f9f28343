"""Tests of the retrieval-quality harness (``bench.metrics``, ``bench.quality``)."""
