"""How a query node's background work with its dependencies is going, for ``/readyz``.

Reads and writes nothing outside memory: the snapshot follower and the Cassandra connector
record each success and failure here, and ``/readyz`` reports it. A failure streak starts at the
first failure after a success and ends at the next success; the node is unhealthy once a streak
has lasted longer than the configured limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

#: The longest error message kept: enough for the cause, never a whole traceback.
MAX_ERROR_CHARS = 300


def describe(exc: BaseException) -> str:
    """``Type: message``, on one line and bounded, for health reports and logs."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_CHARS]


@dataclass
class Health:
    """Success and failure streak of one background task (wall clock, seconds since the epoch)."""

    #: When the task last talked to its dependencies successfully (``None``: never yet).
    last_success: float | None = None
    #: Failures in a row since the last success.
    failures: int = 0
    #: When the current failure streak began (``None``: not failing).
    failing_since: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def succeeded(self) -> None:
        """Record a success: the failure streak, if any, ends."""
        self.last_success = time.time()
        self.failures = 0
        self.failing_since = None

    def failed(self, exc: BaseException) -> None:
        """Record a failure: the streak grows (or starts)."""
        now = time.time()
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        self.last_error = describe(exc)
        self.last_error_at = now

    def failing_for_s(self, now: float | None = None) -> float:
        """Seconds since the current failure streak began (0 when not failing)."""
        if self.failing_since is None:
            return 0.0
        return max(0.0, (now or time.time()) - self.failing_since)

    def as_json(self, now: float | None = None) -> dict[str, Any]:
        """The report ``/readyz`` shows."""
        now = now or time.time()
        return {
            "last_success_age_s": _age(self.last_success, now),
            "failures": self.failures,
            "failing_for_s": round(self.failing_for_s(now), 1),
            "last_error": self.last_error,
            "last_error_age_s": _age(self.last_error_at, now),
        }


def _age(moment: float | None, now: float) -> float | None:
    return None if moment is None else round(max(0.0, now - moment), 1)
