"""Test-only NumPy reference implementations of the original models' semantics."""
