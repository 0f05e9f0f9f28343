"""Session fixtures of the fault tests: dedicated servers they may kill, and generated clips.

Reads the settings; starts Kafka, Cassandra and SeaweedFS of the session's own under a temporary
run folder on free ports (the shared servers are never touched) and stops them at the end;
writes the clips every scenario ingests once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.settings import Settings
from tests.faults.harness import TEST_ENV, Clips, write_fault_clips
from tests.faults.servers import DedicatedServers, dedicated_servers


@pytest.fixture(scope="session")
def fault_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the session's fault runs: servers' data, clips, logs."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="session")
async def fault_setup(
    settings: Settings, fault_root: Path
) -> AsyncIterator[tuple[DedicatedServers, Clips]]:
    """Kafka, Cassandra and SeaweedFS of the fault tests' own, and the clips every scenario
    ingests (two folders, 100 tracks), made at the same time.
    """
    clips = asyncio.create_task(asyncio.to_thread(write_fault_clips, fault_root / "clips"))
    try:
        async with dedicated_servers(settings, fault_root / "run", TEST_ENV) as servers:
            yield servers, await clips
    finally:
        await clips


@pytest.fixture
def fault_servers(fault_setup: tuple[DedicatedServers, Clips]) -> DedicatedServers:
    """The dedicated servers (see :func:`fault_setup`)."""
    return fault_setup[0]


@pytest.fixture
def fault_clips(fault_setup: tuple[DedicatedServers, Clips]) -> Clips:
    """The generated clips (see :func:`fault_setup`)."""
    return fault_setup[1]
