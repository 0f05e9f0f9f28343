"""Where the pipeline keeps things: Cassandra (tracks, vectors), S3 (audio, snapshots)."""
