"""The indexer lease against the real Cassandra: one holder, release, renewal and expiry."""

from __future__ import annotations

import asyncio
import time

import pytest

from snapshots.errors import LeaseHeld, LeaseLost
from snapshots.lease import Lease
from stores.cassandra import CassandraSession

pytestmark = pytest.mark.integration


async def test_two_concurrent_acquirers_get_one_lease(db: CassandraSession, unique: str) -> None:
    one = Lease(db, unique, "indexer", owner="worker-1", ttl_s=30)
    two = Lease(db, unique, "indexer", owner="worker-2", ttl_s=30)
    results = await asyncio.gather(one.acquire(), two.acquire())
    assert sorted(results) == [False, True]
    winner, loser = (one, two) if results[0] else (two, one)
    assert await winner.holder() == winner.owner
    assert winner.held and not loser.held
    assert not await loser.acquire()
    with pytest.raises(LeaseHeld, match=f"held by {winner.owner}") as err:
        async with loser:
            pytest.fail("entered a lease someone else holds")
    assert err.value.retriable

    assert not await loser.release()  # not ours: nothing happens
    assert await winner.holder() == winner.owner
    assert await winner.release()
    assert await winner.holder() is None
    assert await loser.acquire()


async def test_context_managers_admit_one_and_release_on_exit(
    db: CassandraSession, unique: str
) -> None:
    entered: list[str] = []

    async def work(owner: str) -> str:
        async with Lease(db, unique, "indexer", owner=owner, ttl_s=30) as lease:
            entered.append(owner)
            await asyncio.sleep(0.3)
            lease.check()
        return owner

    results = await asyncio.gather(work("a"), work("b"), return_exceptions=True)
    assert len(entered) == 1
    assert sum(isinstance(r, LeaseHeld) for r in results) == 1
    # Released on exit: a third worker gets it at once.
    async with Lease(db, unique, "indexer", owner="c", ttl_s=30) as lease:
        assert await lease.holder() == "c"


async def test_a_crashed_holders_lease_expires_after_its_ttl(
    db: CassandraSession, unique: str
) -> None:
    crashed = Lease(db, unique, "indexer", owner="crashed", ttl_s=2)
    other = Lease(db, unique, "indexer", owner="other", ttl_s=30)
    assert await crashed.acquire()
    assert not await other.acquire()
    started = time.monotonic()
    while not await other.acquire():  # the crashed holder never renews nor releases
        assert time.monotonic() - started < 10, "lease did not expire"
        await asyncio.sleep(0.2)
    assert await other.holder() == "other"
    with pytest.raises(LeaseLost):
        await crashed.renew()
    with pytest.raises(LeaseLost):
        crashed.check()


async def test_a_held_lease_is_renewed_past_its_ttl(db: CassandraSession, unique: str) -> None:
    other = Lease(db, unique, "indexer", owner="other", ttl_s=30)
    # A 2 s TTL lasts 1-2 s (whole-second expiry), so renewing every 0.25 s keeps it alive.
    async with Lease(db, unique, "indexer", owner="holder", ttl_s=2, renew_every_s=0.25) as lease:
        for _ in range(16):  # 4 s: at least two TTLs
            await asyncio.sleep(0.25)
            assert not await other.acquire()
        lease.check()
        assert await lease.holder() == "holder"
    assert await other.acquire()
