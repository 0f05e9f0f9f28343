"""Real servers killed mid-ingest, a worker killed between its per-track steps, a query node cut
off from its object store: every track is indexed once, nothing is dead-lettered, and nothing has
to be restarted by hand.

Runs on dedicated servers (see ``conftest.py``), one scenario after another; each ingests 100
generated clips in a deployment of its own and prints its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import (
    CRASH_STEPS,
    Clips,
    Outcome,
    query_node_outage,
    server_outage,
    worker_crashes,
)
from tests.faults.servers import SERVER_NAMES, DedicatedServers


def _report(outcome: Outcome) -> str:
    print(outcome.summary())  # the figures the issue asks to see
    return outcome.summary() + outcome.log_tails()


def _nothing_lost(outcome: Outcome) -> None:
    report = _report(outcome)
    assert outcome.complete, report
    assert outcome.duplicated == 0, report
    assert outcome.dead_letters == 0, report
    assert outcome.recovery_s is not None, report


@pytest.mark.parametrize("name", SERVER_NAMES)
async def test_a_server_killed_mid_ingest_stalls_the_pipeline_and_it_resumes(
    fault_servers: DedicatedServers, fault_clips: Clips, fault_root: Path, name: str
) -> None:
    outcome = await server_outage(fault_servers, fault_clips, fault_root, name)
    _nothing_lost(outcome)
    # The worker waited the outage out: it never exited, so nothing had to start it again.
    assert outcome.worker_restarts == 0, _report(outcome)


async def test_a_worker_killed_after_any_step_is_completed_by_the_replay(
    fault_servers: DedicatedServers, fault_clips: Clips, fault_root: Path
) -> None:
    outcome = await worker_crashes(fault_servers, fault_clips, fault_root)
    _nothing_lost(outcome)
    # Each run died by SIGKILL right after its step, and the next one finished the work.
    assert outcome.worker_exits == [-9] * len(CRASH_STEPS), _report(outcome)
    assert outcome.worker_restarts == len(CRASH_STEPS), _report(outcome)


async def test_a_query_node_cut_off_from_its_store_keeps_answering_and_catches_up(
    fault_servers: DedicatedServers, fault_clips: Clips, fault_root: Path
) -> None:
    outcome = await query_node_outage(fault_servers, fault_clips, fault_root)
    _nothing_lost(outcome)
    assert outcome.worker_restarts == 0, _report(outcome)
    # Every request during the outage was answered, from the snapshot the node had.
    assert set(outcome.answers) == {200}, _report(outcome)
    assert sum(outcome.answers.values()) > 10, _report(outcome)
