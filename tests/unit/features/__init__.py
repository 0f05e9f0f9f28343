"""Tests of the feature extractor on real recordings with the real weights."""
