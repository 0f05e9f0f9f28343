"""The pipeline's own long-running processes, run in the background for ``spotrec demo``.

Reads the settings; starts ``spotrec worker`` and ``spotrec api`` as detached processes with
their logs and pid files under ``<run_dir>/worker`` and ``<run_dir>/api``, and probes them over
HTTP (the worker's Faust web port, the query node's ``/healthz``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from config.settings import Settings
from infra.servers.process import LocalServer, ServerError

#: The worker's Faust web port when the settings name none: the demo probes it for readiness.
DEFAULT_WORKER_WEB_PORT = 6066


async def _get_ok(url: str) -> None:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        if response.status >= 400:
            msg = f"{url} answered {response.status}"
            raise ServerError(msg)


class _PipelineProcess(LocalServer):
    """A ``spotrec`` sub-command run in the background, answering HTTP on one port."""

    def __init__(self, run_dir: Path, port: int, env: dict[str, str], timeout_s: float) -> None:
        super().__init__(run_dir, start_timeout_s=timeout_s)
        self.port = port
        self.env = env

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> Sequence[int]:
        return (self.port,)

    def environment(self) -> dict[str, str]:
        return self.env


class WorkerProcess(_PipelineProcess):
    """``spotrec worker`` with its web views on, so that readiness can be probed."""

    name = "worker"
    marker = "cli worker"

    def __init__(self, settings: Settings, run_dir: Path, env: dict[str, str]) -> None:
        port = settings.worker.web_port or DEFAULT_WORKER_WEB_PORT
        super().__init__(run_dir, port, env, timeout_s=120.0)

    def command(self) -> list[str]:  # noqa: D102
        return [
            sys.executable,
            "-m",
            "cli",
            "worker",
            f"--web-port={self.port}",
            f"--data-dir={self.home / 'data'}",
        ]

    async def probe(self) -> None:
        """Faust's web server answers once the worker has started."""
        await _get_ok(f"{self.endpoint}/")


class ApiProcess(_PipelineProcess):
    """``spotrec api``: a query node."""

    name = "api"
    marker = "cli api"

    def __init__(self, settings: Settings, run_dir: Path, env: dict[str, str]) -> None:
        super().__init__(run_dir, settings.api.port, env, timeout_s=60.0)

    def command(self) -> list[str]:  # noqa: D102
        # The run dir in the command line lets `running_pid` recognise this process as ours.
        return [sys.executable, "-m", "cli", "api", f"--port={self.port}", f"--tag={self.home}"]

    async def probe(self) -> None:
        """``/healthz`` answers."""
        await _get_ok(f"{self.endpoint}/healthz")


def pipeline_processes(settings: Settings, env: dict[str, str] | None = None) -> list[LocalServer]:
    """The worker and the query node, configured from ``settings``."""
    run_dir = settings.path(settings.run_dir)
    return [WorkerProcess(settings, run_dir, env or {}), ApiProcess(settings, run_dir, env or {})]
