"""Tests against the real Kafka, Cassandra and S3 servers started by the project."""
