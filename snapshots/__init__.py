"""The snapshot layer: build, publish, find, download, verify and query ANNOY snapshots.

Reads Cassandra (vectors, metadata, change marks, leases) and the object store; writes snapshot
folders locally and under ``snapshots/`` in the bucket. See each module for its part; callers
import from the modules themselves.
"""
