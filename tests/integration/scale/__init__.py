"""Scaling out: several workers and several query nodes on the real servers."""
