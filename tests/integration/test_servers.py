"""The launchers' behaviour on this machine: reuse, status, and each way a start can fail.

These start extra server instances on free ports in a temporary run directory, so they never
disturb the servers the rest of the suite uses.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from infra.servers import ServerError, status, up
from infra.servers.control import local_servers
from infra.servers.kafka import KafkaServer
from infra.servers.seaweed import SeaweedServer


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_block(size: int) -> int:
    """A base port such that base..base+size and their +10000 twins are all free."""
    for _ in range(200):
        base = random.randrange(30000, 39000)
        if all(_free(p) and _free(p + 10000) for p in range(base, base + size)):
            return base
    msg = "no free port block found"
    raise RuntimeError(msg)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port held open by a socket that is not one of our servers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_up_reuses_running_servers_and_status_reports_them(servers: Settings) -> None:
    again = await up(servers)
    assert {s.name for s in again} == {"kafka", "cassandra", "seaweed"}
    assert all(s.already_running for s in again)
    report = await status(servers)
    assert all(s.answering for s in report), report
    assert all(s.resident_bytes and s.resident_bytes > 10 * 2**20 for s in report if s.pid)


async def test_port_in_use_is_refused_and_nothing_starts(
    settings: Settings, listener: int, tmp_path: Path
) -> None:
    update = {"port": listener, "controller_port": _free_block(1)}
    kafka = KafkaServer(settings.kafka.model_copy(update=update), tmp_path)
    with pytest.raises(ServerError, match=rf"port {listener} on 127.0.0.1 is already in use"):
        await kafka.start()
    assert kafka.running_pid() is None


async def test_missing_java_is_a_clear_error(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _free_block(2)
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without java
    kafka = KafkaServer(
        settings.kafka.model_copy(update={"port": base, "controller_port": base + 1}), tmp_path
    )
    with pytest.raises(ServerError, match="java not found on PATH"):
        await kafka.start()


async def test_jvm_that_dies_reports_its_log_and_leaves_nothing_running(
    settings: Settings, tmp_path: Path
) -> None:
    base = _free_block(2)
    kafka = KafkaServer(
        # A heap far too small for the JVM to boot: it exits at once with a message.
        settings.kafka.model_copy(update={"port": base, "controller_port": base + 1, "heap": "1k"}),
        tmp_path,
    )
    with pytest.raises(ServerError, match="exited with status") as err:
        await kafka.start()
    assert "heap" in str(err.value).lower()  # the log's last lines are part of the message
    assert str(kafka.log_file) in str(err.value)
    assert kafka.running_pid() is None
    assert _free(base)


async def test_failed_up_stops_the_servers_it_started(settings: Settings, tmp_path: Path) -> None:
    kafka_base, s3_base = _free_block(2), _free_block(5)
    broken = settings.model_copy(
        update={
            "run_dir": tmp_path,
            "kafka": settings.kafka.model_copy(
                update={"port": kafka_base, "controller_port": kafka_base + 1, "heap": "1k"}
            ),
            "s3": settings.s3.model_copy(
                update={"port": s3_base, "internal_port_base": s3_base + 1}
            ),
        }
    )
    chosen = [s for s in local_servers(broken) if isinstance(s, KafkaServer | SeaweedServer)]
    with pytest.raises(ServerError, match="kafka: the process exited"):
        await up(broken, chosen)
    seaweed = next(s for s in chosen if isinstance(s, SeaweedServer))
    assert (seaweed.home / "server.log").exists(), "the S3 server was never started"
    assert seaweed.running_pid() is None
    assert all(_free(p) for p in seaweed.ports)
