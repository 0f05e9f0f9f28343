"""Benchmarks and quality measurements, run from the repository root; ``metrics`` is importable."""
