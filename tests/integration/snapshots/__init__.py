"""The snapshot layer against the real Cassandra and S3 servers."""
