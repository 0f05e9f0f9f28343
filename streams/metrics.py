"""The worker's Prometheus metrics, served on its web port at ``/metrics``.

Reads the Faust app's stream events (through a sensor), its consumer's assignment and offsets
(when scraped), and what agents report through the small functions below; writes nothing but
the metrics. Agents call one function per fact (``batch(...)``, ``extracted(...)``,
``dead_lettered(...)``, ``retried(...)``, ``index_build(...)``); events processed per topic and
agent and their processing time are counted by the sensor without any agent's help.
Metric names start with ``spotrec_worker_``; the README lists them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import faust
from faust.types import TP, EventT, StreamT
from faust.web import Request, Response, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

T = TypeVar("T")

#: One registry per process: a worker is one process with one app.
REGISTRY = CollectorRegistry()

EVENTS = Counter(
    "spotrec_worker_events",
    "Events processed (acknowledged) by each agent, by topic",
    ["topic", "agent"],
    registry=REGISTRY,
)
EVENT_SECONDS = Histogram(
    "spotrec_worker_event_seconds",
    "Seconds from an event entering an agent's stream to its acknowledgement",
    ["agent"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "spotrec_worker_batch_size",
    "Events per batch an agent processed together",
    ["agent"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
EXTRACTION_SECONDS = Histogram(
    "spotrec_worker_extraction_seconds_per_clip",
    "Seconds of feature extraction per clip (a batch's time over its clips)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
CLIPS = Counter(
    "spotrec_worker_clips_extracted", "Clips whose features were extracted", registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "spotrec_worker_dead_letters",
    "Events sent to the dead-letter topic, by agent and reason kind (the error's class)",
    ["agent", "reason"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "spotrec_worker_retries",
    "Retries in place of an operation that failed for now, by what was retried",
    ["operation"],
    registry=REGISTRY,
)
INDEX_BUILDS = Counter(
    "spotrec_worker_index_builds",
    "Snapshot builds by the indexer, by outcome (built, nothing, failed)",
    ["outcome"],
    registry=REGISTRY,
)
INDEX_BUILD_SECONDS = Histogram(
    "spotrec_worker_index_build_seconds",
    "Seconds per snapshot build (read, build, publish)",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
LAG = Gauge(
    "spotrec_worker_consumer_lag",
    "Messages in a partition assigned to this worker not yet committed by it",
    ["topic", "partition"],
    registry=REGISTRY,
)


def agent_of(stream: StreamT[Any]) -> str:
    """The short name of the agent reading ``stream`` (its function's name)."""
    prefix = getattr(stream, "prefix", "") or ""
    return prefix.rsplit(".", 1)[-1] or "stream"


def batch(agent: str, size: int) -> None:
    """One batch of ``size`` events processed together by ``agent``."""
    BATCH_SIZE.labels(agent).observe(size)


def extracted(clips: int, seconds: float) -> None:
    """``clips`` clips' features extracted in ``seconds``."""
    if clips > 0:
        CLIPS.inc(clips)
        per_clip = seconds / clips
        for _ in range(clips):
            EXTRACTION_SECONDS.observe(per_clip)


def dead_lettered(agent: str, exc: BaseException | None) -> None:
    """One event dead-lettered by ``agent``; the reason kind is the error's class."""
    DEAD_LETTERS.labels(agent, type(exc).__name__ if exc is not None else "rejected").inc()


def retried(what: str) -> None:
    """One retry in place of ``what``, counted by its kind.

    The kind is ``what`` up to a ``/`` or ``:``, so a URL path or a track id never becomes a
    label value.
    """
    RETRIES.labels(re.split(r"[/:]", what, maxsplit=1)[0].strip()[:48]).inc()


def index_build(outcome: str, seconds: float) -> None:
    """One indexer build attempt: ``built``, ``nothing`` (no change) or ``failed``."""
    INDEX_BUILDS.labels(outcome).inc()
    INDEX_BUILD_SECONDS.labels(outcome).observe(seconds)


async def timed_extraction(clips: int, work: Awaitable[T]) -> T:
    """Await the extraction of ``clips`` clips, counting them and their time."""
    started = time.perf_counter()
    result = await work
    extracted(clips, time.perf_counter() - started)
    return result


async def timed_index_build(work: Awaitable[T | None]) -> T | None:
    """Await one indexer tick: ``built`` when it returns a broadcast, else ``nothing``."""
    started = time.perf_counter()
    try:
        result = await work
    except Exception:
        index_build("failed", time.perf_counter() - started)
        raise
    index_build("built" if result is not None else "nothing", time.perf_counter() - started)
    return result


class PipelineSensor(faust.Sensor):
    """Counts each agent's events by topic and times them from stream entry to acknowledgement."""

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        """Remember when the event entered the stream."""
        return {"start": time.monotonic()}

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        """Count the event and its time in the agent."""
        agent = agent_of(stream)
        EVENTS.labels(tp.topic, agent).inc()
        if state is not None and "start" in state:
            EVENT_SECONDS.labels(agent).observe(time.monotonic() - state["start"])


async def _update_lag(app: faust.App) -> None:
    """Set the lag of every assigned partition: its end offset minus what was committed."""
    try:
        assigned = app.consumer.assignment()
        ends = await app.consumer.highwaters(*assigned) if assigned else {}
    except Exception:  # noqa: BLE001 - no consumer yet, or the broker is away: no lag to show
        return
    committed = app.monitor.tp_committed_offsets or {}
    read = app.monitor.tp_read_offsets or {}
    LAG.clear()
    for tp, end in ends.items():
        if end is None or end < 0:
            continue
        done = committed.get(tp, read[tp] + 1 if tp in read else None)
        if done is None:  # nothing read nor committed by this worker yet: unknown, not shown
            continue
        LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - done))


def install(app: faust.App) -> None:
    """Add the sensor and the ``/metrics`` page to the worker's app."""
    app.sensors.add(PipelineSensor())

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        await _update_lag(app)
        return web.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
