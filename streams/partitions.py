"""The partitions of an existing topic, asked of the cluster.

Reads topic metadata from Kafka; writes nothing. For readers that take every partition of a
topic themselves (no consumer group) and must not create it: the workers create topics with
their partitions and settings.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_clients import started


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of ``topic``, sorted; empty while it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await started(admin)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = [t for t in described if t.get("topic") == topic and t.get("error_code") == 0]
    return sorted(p["partition"] for t in found for p in t.get("partitions", []))
