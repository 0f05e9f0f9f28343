"""Session fixtures: settings, and the real servers (started if not running, else reused).

Reads the settings from the environment (``config/test.env`` when present); starts Kafka,
Cassandra and SeaweedFS under the run directory if they do not answer, and stops at the end only
the servers this session started. A server that cannot be started fails every test that needs
it: nothing is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from config.settings import Settings, load_settings
from infra.servers import up
from infra.servers.control import local_servers

#: The model of every test that does not choose one: the calibrated Choi network is the fastest
#: (musicnn, the default, costs far more per clip); the tests of the default model select it.
TEST_MODEL = "choi2017-calibrated"


@pytest.fixture(scope="session", autouse=True)
def test_model() -> Iterator[str]:
    """``SPOTREC_MODEL_VERSION`` set to :data:`TEST_MODEL` for the session and every process it
    starts (a developer's ``config/local.env`` cannot change it).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPOTREC_MODEL_VERSION", TEST_MODEL)
        yield TEST_MODEL


@pytest.fixture(scope="session")
def settings(test_model: str) -> Settings:
    """The settings every test reads, loaded once."""
    return load_settings()


@pytest.fixture(scope="session")
async def servers(settings: Settings) -> AsyncIterator[Settings]:
    """Kafka, Cassandra and S3 answering on the configured ports."""
    servers = local_servers(settings)
    started = await up(settings, servers)
    yield settings
    ours = {s.name for s in started if not s.already_running}
    for server in servers:
        if server.name in ours:
            await server.stop()


@pytest.fixture
def unique() -> str:
    """A fresh lower-case name for per-test topics, groups and keyspaces."""
    return f"t{uuid.uuid4().hex[:16]}"
