"""Dropping a test's scratch keyspace, patiently: schema changes are slow on a busy node.

Reads nothing; drops a keyspace in the real Cassandra node the tests share.
"""

from __future__ import annotations

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from stores.cassandra import CassandraSession
from stores.errors import is_transient
from streams.retries import retried

#: Tries of the drop; the waits between them double from one second.
DROP_ATTEMPTS = 5


async def drop_keyspace(db: CassandraSession, name: str) -> None:
    """``DROP KEYSPACE IF EXISTS``, repeated while the node only times out (it is idempotent).

    A keyspace drop waits for the schema to settle across the node's tables; on a loaded
    2-core machine that can outlast the client's request timeout without anything being wrong.
    """
    policy = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(DROP_ATTEMPTS),
        wait=wait_exponential(multiplier=1.0),
        reraise=True,
    )
    await retried(policy, lambda: db.execute(f"DROP KEYSPACE IF EXISTS {name}"))
