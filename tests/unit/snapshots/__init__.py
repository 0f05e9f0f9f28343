"""Unit tests of the snapshot layer: manifests, building, loading and querying."""
