"""Timer ticks that fail are counted and skipped; the next tick runs as usual."""

from __future__ import annotations

from cassandra.cluster import NoHostAvailable

from config.settings import Settings
from stores.cassandra import CassandraSession
from streams.resources import Resources
from streams.timers import index_once, tick


async def test_a_cassandra_outage_in_a_tick_is_counted_not_raised(res: Resources) -> None:
    # A real NoHostAvailable: a session to a port nothing listens on.
    unreachable = res.settings.cassandra.model_copy(update={"port": 1, "request_timeout_s": 1.0})
    raised: list[BaseException] = []

    async def failing_tick() -> None:
        try:
            await CassandraSession(unreachable).start()
        except NoHostAvailable as exc:
            raised.append(exc)
            raise

    assert not await tick(res, "indexer", failing_tick)
    assert not await tick(res, "indexer", failing_tick)
    assert len(raised) == 2
    assert res.stats.timer_failures["indexer"] == 2
    # The next tick runs normally: nothing is stored yet, so there is nothing to index.
    assert await tick(res, "indexer", lambda: index_once(res))
    assert res.stats.timer_failures["indexer"] == 2


async def test_the_indexer_tick_answers_none_with_nothing_to_index(
    res: Resources, deployment: Settings
) -> None:
    assert res.settings.cassandra.keyspace == deployment.cassandra.keyspace
    assert await index_once(res) is None
