"""Reads what a ``spotrec worker`` process wrote to its log: its partitions and its work.

Reads the log file a test or benchmark captured the worker's output into; writes nothing. Faust
logs each new assignment as a table of ``| topic | {0-3, 6} |`` rows, and the features agent one
``embedded N of M tracks`` line per batch.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

_EMBEDDED = re.compile(r"embedded (\d+) of (\d+) tracks")
_ASSIGNED = "Setting newly assigned partitions"
#: A row of the table; Faust writes runs of partitions as ranges, the rest comma-separated.
_ROW = re.compile(r"^\| (\S+) +\| \{([0-9, -]*)\} +\|$", re.MULTILINE)


def partitions(spec: str) -> set[int]:
    """``"0-3, 6"`` (as Faust writes a set of partitions) as ``{0, 1, 2, 3, 6}``."""
    found: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, _, high = part.partition("-")
        found |= set(range(int(low), int(high or low) + 1))
    return found


def assignment_in(log: str) -> dict[str, set[int]] | None:
    """The newest assignment a worker's log shows, by topic, once the worker says it is ready."""
    at = log.rfind(_ASSIGNED)
    if at < 0 or "Worker ready" not in log[at:]:
        return None
    end = log.find(" for group", at)
    table = log[at : end if end >= 0 else len(log)]
    return {m.group(1): partitions(m.group(2)) for m in _ROW.finditer(table)}


@dataclass
class Worker:
    """One worker process and its log."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    def text(self, start: int = 0) -> str:
        """The log from byte ``start`` on."""
        with self.log.open("rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def size(self) -> int:
        """The log's length in bytes now."""
        return self.log.stat().st_size

    def assignment(self) -> dict[str, set[int]] | None:
        """The partitions of the worker's newest assignment by topic, once it is running them."""
        return assignment_in(self.text())

    def embedded(self, start: int = 0) -> int:
        """How many tracks this worker embedded (from byte ``start`` of its log on)."""
        return sum(int(m.group(1)) for m in _EMBEDDED.finditer(self.text(start)))
