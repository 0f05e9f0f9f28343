"""Counters of one worker's failures and retries, kept in memory for logs and metrics.

Reads and writes nothing outside itself: the agents and timers count into one
:class:`WorkerStats` the worker's resources hold; a metrics exporter reads it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class WorkerStats:
    """What went wrong in one worker process, and what was done about it.

    Attributes:
        in_place_retries: Tries repeated in place after a transient fault, by operation.
        timer_failures: Timer ticks (indexer, sweepers) that failed and were skipped, by timer.
        scheduled_retries: Tracks and playlists handed to the retry schedule, by kind.
        gave_up: Scheduled retries that reached the limit, by kind.
        dead_letters: Records parked on the dead-letter topic, by agent.
    """

    in_place_retries: Counter[str] = field(default_factory=Counter)
    timer_failures: Counter[str] = field(default_factory=Counter)
    scheduled_retries: Counter[str] = field(default_factory=Counter)
    gave_up: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
