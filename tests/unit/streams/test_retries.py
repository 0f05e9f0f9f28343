"""The two retry policies: unbounded for our servers, bounded for third parties, jittered waits."""

from __future__ import annotations

import pytest

from config.settings import RetrySettings
from sources.errors import SourceUnavailable, TrackNotFound
from stores.errors import StoreRejected, StoreUnavailable
from streams.errors import TopicUnavailable
from streams.retries import jittered_delay, own_servers, retried, third_party
from streams.stats import WorkerStats

#: Waits short enough for a test, still exercising the real back-off.
QUICK = RetrySettings(backoff_s=0.0001, max_backoff_s=0.0005)


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then answers ``"ok"``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 12])
def test_the_delay_doubles_up_to_the_cap_with_jitter_in_the_upper_half(attempt: int) -> None:
    ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
    delays = [jittered_delay(attempt, 0.5, 10.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 150  # jittered, not a constant


def test_the_delay_stays_at_the_cap_however_long_an_outage_lasts() -> None:
    assert 15.0 <= jittered_delay(100_000, 0.5, 30.0) <= 30.0


async def test_our_servers_are_retried_for_as_long_as_they_fail() -> None:
    # Far more tries than any bounded policy here allows: the outage simply lasts.
    stats = WorkerStats()
    flaky = Flaky(200, StoreUnavailable("Cassandra: NoHostAvailable"))
    assert await retried(own_servers(QUICK, "store vectors", stats), flaky) == "ok"
    assert flaky.calls == 201
    assert stats.in_place_retries["store vectors"] == 200


async def test_a_broker_outage_is_retried_in_place_too() -> None:
    flaky = Flaky(5, TopicUnavailable("no leader"))
    assert await retried(own_servers(QUICK, "produce"), flaky) == "ok"
    assert flaky.calls == 6


@pytest.mark.parametrize(
    "error", [StoreRejected("bad query"), SourceUnavailable("Deezer 503"), ValueError("bug")]
)
async def test_the_own_servers_policy_raises_anything_else_at_once(error: Exception) -> None:
    flaky = Flaky(1, error)
    with pytest.raises(type(error)):
        await retried(own_servers(QUICK, "x"), flaky)
    assert flaky.calls == 1


async def test_a_third_party_is_retried_a_bounded_number_of_times() -> None:
    flaky = Flaky(100, SourceUnavailable("Deezer answered HTTP 503"))
    with pytest.raises(SourceUnavailable):
        await retried(third_party(3, 0.0001, "Deezer /track/1"), flaky)
    assert flaky.calls == 4  # the first try and three retries


async def test_a_third_party_that_recovers_within_the_bound_answers() -> None:
    flaky = Flaky(2, SourceUnavailable("timed out"))
    assert await retried(third_party(3, 0.0001, "x"), flaky) == "ok"
    assert flaky.calls == 3


@pytest.mark.parametrize("error", [TrackNotFound("gone"), StoreUnavailable("Cassandra down")])
async def test_the_third_party_policy_retries_only_third_party_faults(error: Exception) -> None:
    flaky = Flaky(1, error)
    with pytest.raises(type(error)):
        await retried(third_party(3, 0.0001, "x"), flaky)
    assert flaky.calls == 1
