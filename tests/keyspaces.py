"""Dropping a test's scratch keyspace, patiently: schema changes are slow on a busy node.

Reads nothing; drops a keyspace in the real Cassandra node the tests share.
"""

from __future__ import annotations

import asyncio

from stores.cassandra import CassandraSession
from stores.errors import is_transient

#: Tries of the drop; the waits between them double from one second.
DROP_ATTEMPTS = 5


async def drop_keyspace(db: CassandraSession, name: str) -> None:
    """``DROP KEYSPACE IF EXISTS``, repeated while the node only times out (it is idempotent).

    A keyspace drop waits for the schema to settle across the node's tables; on a loaded
    2-core machine that can outlast the client's request timeout without anything being wrong.
    """
    for attempt in range(DROP_ATTEMPTS):
        try:
            await db.execute(f"DROP KEYSPACE IF EXISTS {name}")
            return
        except Exception as exc:
            if not is_transient(exc) or attempt == DROP_ATTEMPTS - 1:
                raise
            await asyncio.sleep(2.0**attempt)
