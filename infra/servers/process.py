"""One supervised server process: ports, pid file, log file, start, readiness, stop.

Writes ``<run_dir>/<name>/server.pid`` and ``server.log``; reads ``/proc`` to tell whether the
recorded process is still the one we started (a pid can be reused by an unrelated process).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: How many lines of a server's log an error message carries.
LOG_TAIL_LINES = 40

#: Servers started by this process, by pid. Holding the Popen objects keeps them from being
#: collected (and warning) while the server runs on, and lets us reap them when they stop.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ServerError(RuntimeError):
    """A server could not be started, probed or stopped; the message says which and why."""


@dataclass(frozen=True)
class Started:
    """The outcome of starting one server."""

    name: str
    endpoint: str
    seconds: float
    already_running: bool
    pid: int


class LocalServer(abc.ABC):
    """A server the project runs itself: subclasses say how to prepare, launch and probe it."""

    #: Short name, also the name of its folder under the run directory.
    name: str
    #: A string that appears in the process's command line, to recognise it after a restart.
    marker: str

    def __init__(self, run_dir: Path, start_timeout_s: float) -> None:
        self.home = run_dir / self.name
        self.start_timeout_s = start_timeout_s

    @property
    def pid_file(self) -> Path:
        """Where the pid of the running server is recorded."""
        return self.home / "server.pid"

    @property
    def log_file(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.home / "server.log"

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """The address clients use, as printed to the user."""

    @property
    @abc.abstractmethod
    def ports(self) -> Sequence[int]:
        """Every port the server binds on 127.0.0.1."""

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    def check_prerequisites(self) -> None:  # noqa: B027  # optional hook
        """Raise :class:`ServerError` if something the server needs is missing."""

    def prepare(self) -> None:  # noqa: B027  # optional hook
        """Write configuration and initialise storage before the first start."""

    def environment(self) -> dict[str, str]:
        """Extra environment variables for the server process."""
        return {}

    @abc.abstractmethod
    async def probe(self) -> None:
        """Make one real request to the server; raise if it does not answer correctly."""

    # -- process bookkeeping -------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The pid of our server if it is alive, else ``None`` (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            cmdline, stat = "", ""
        # A zombie (state Z) has exited; a different command line means the pid was reused.
        state = stat.rsplit(")", 1)[-1].split()[:1]
        if self.marker in cmdline and str(self.home) in cmdline and state != ["Z"]:
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def accepting(self) -> bool:
        """Whether the server's main port accepts connections (ours or not)."""
        return _accepting(self.ports[0])

    def _busy_ports(self) -> list[int]:
        return [port for port in self.ports if _accepting(port)]

    def _fail(self, what: str) -> ServerError:
        return ServerError(
            f"{self.name}: {what}\n--- last lines of {self.log_file} ---\n{self.log_tail()}"
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Started:
        """Start the server unless it runs already, and return once it answers a request.

        Raises:
            ServerError: A port is taken, a prerequisite is missing, the process exited, or it
                did not answer in time. A process this call started is stopped before raising.
        """
        begin = time.monotonic()
        pid = self.running_pid()
        if pid is not None:
            await self._wait_ready(pid, begin)
            return Started(self.name, self.endpoint, time.monotonic() - begin, True, pid)
        busy = self._busy_ports()
        if busy:
            ports = ("port " if len(busy) == 1 else "ports ") + ", ".join(map(str, busy))
            msg = (
                f"{self.name}: {ports} on 127.0.0.1 is already in use by another process; "
                "stop that process or choose other ports in config/local.env"
            )
            raise ServerError(msg)
        self.check_prerequisites()
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_file.open("ab") as log:
            log.write(f"\n=== starting {self.name} at {time.ctime()} ===\n".encode())
            log.flush()
            process = subprocess.Popen(  # noqa: ASYNC220  # returns at once; the server runs on
                self.command(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.environment()},
                start_new_session=True,  # own process group: survives the CLI, killed as a unit
            )
        _children[process.pid] = process
        self.pid_file.write_text(f"{process.pid}\n")
        try:
            await self._wait_ready(process.pid, begin, process)
        except BaseException:
            await self.stop()
            raise
        return Started(self.name, self.endpoint, time.monotonic() - begin, False, process.pid)

    async def _wait_ready(
        self, pid: int, begin: float, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        deadline = begin + self.start_timeout_s
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                msg = f"the process exited with status {process.returncode}"
                raise self._fail(msg)
            if process is None and self.running_pid() != pid:
                msg = f"the process {pid} exited"
                raise self._fail(msg)
            if not _accepting(self.ports[0]):
                # Clients log noisily while the port is closed; wait for it before probing.
                await asyncio.sleep(0.1)
                continue
            try:
                await asyncio.wait_for(self.probe(), timeout=10)
            except Exception as exc:  # noqa: BLE001  # any failure means "not ready yet"
                last_error = exc
                await asyncio.sleep(0.25)
                continue
            return
        msg = f"no answer within {self.start_timeout_s:.0f} s (last probe error: {last_error!r})"
        raise self._fail(msg)

    async def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``timeout_s``.

        Returns:
            Whether a running server was found and stopped.
        """
        pid = self.running_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):  # noqa: ASYNC110  # another process
            await asyncio.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid):  # noqa: ASYNC110  # polling another process
                await asyncio.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def resident_memory_bytes(self) -> int | None:
        """Resident set size of the running server, from ``/proc``, or ``None`` if stopped."""
        pid = self.running_pid()
        if pid is None:
            return None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None


def _accepting(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Connect rather than bind: a bind can succeed on a port in TIME_WAIT, and a connect
        # is what a client would see.
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie; reaps it if it is our child."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def require_java() -> str:
    """The path of ``java``, or a :class:`ServerError` saying how to get it."""
    java = shutil.which("java")
    if java is None:
        msg = (
            "java not found on PATH: Kafka and Cassandra need a Java 17 runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )
        raise ServerError(msg)
    return java
