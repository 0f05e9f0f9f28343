"""Local Apache Kafka, Apache Cassandra and SeaweedFS servers: their configuration and launchers.

The sub-folders ``kafka/`` and ``cassandra/`` hold the pinned Maven poms and configuration
templates; ``servers/`` holds the Python that resolves, starts, probes and stops them.
"""
