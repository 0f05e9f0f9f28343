"""The query node's Prometheus metrics, served at ``/metrics``.

Reads the app's snapshot holder and derived views when scraped; counts requests as they are
answered. Every app has its own registry, so several nodes (or tests) in one process never share
a counter. Metric names start with ``spotrec_``; the README lists them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from api.errors import Handler
from api.face import face_key
from api.keys import holder_key

#: Seconds: query answers take milliseconds; snapshot pages and cold starts up to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _SnapshotCollector(Collector):
    """The serving snapshot's version, model, size, age and recall, read when scraped."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        holder = self.app[holder_key]
        snapshot = holder.current
        info = GaugeMetricFamily(
            "spotrec_snapshot_info",
            "The snapshot served (1), labelled with its version and model version",
            labels=["version", "model"],
        )
        tracks = GaugeMetricFamily("spotrec_snapshot_tracks", "Tracks in the snapshot served")
        age = GaugeMetricFamily(
            "spotrec_snapshot_age_seconds", "Seconds since the snapshot served was built"
        )
        recall = GaugeMetricFamily(
            "spotrec_snapshot_recall",
            "Recall@k of the snapshot served against exact search, measured when it was built:"
            " its stored neighbour lists (queries by id) and its index search (by vector)",
            labels=["way", "at"],
        )
        if snapshot is not None:
            manifest = snapshot.manifest
            info.add_metric([manifest.version, manifest.model_version], 1.0)
            tracks.add_metric([], float(manifest.count))
            age.add_metric([], (datetime.now(UTC) - manifest.built_at).total_seconds())
            for way, value in _recall_figures(manifest.recall):
                recall.add_metric([way, str((manifest.recall or {}).get("at", ""))], value)
        yield from (info, tracks, age, recall)
        swaps = CounterMetricFamily(
            "spotrec_snapshot_swaps", "Snapshots swapped in since the node started"
        )
        swaps.add_metric([], float(getattr(holder, "swaps", 0)))
        refusals = CounterMetricFamily(
            "spotrec_snapshot_refusals",
            "Snapshots refused (download, checksum, load or completeness failed)",
        )
        refusals.add_metric([], float(len(holder.refused)))
        yield from (swaps, refusals)
        views = self.app[face_key].views
        current = views.current if views is not None else None
        if current is not None:
            build = GaugeMetricFamily(
                "spotrec_search_index_build_seconds",
                "Seconds the newest search index and map took to build",
            )
            build.add_metric([], current.build_s)
            yield build


def _recall_figures(recall: Mapping[str, Any] | None) -> Iterator[tuple[str, float]]:
    # Snapshots built before recall was measured have none; a figure that is not a number
    # (a hand-edited manifest) is left out rather than failing the scrape.
    for way in ("lists", "search"):
        value = (recall or {}).get(way)
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield way, float(value)


class NodeMetrics:
    """The metrics of one query node."""

    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "spotrec_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "spotrec_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_SnapshotCollector(app))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)


metrics_key = web.AppKey("metrics", NodeMetrics)


def _route(request: web.Request) -> str:
    # The route's template, never the raw path: one series per route, not one per track id.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def measure_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route and status, and time it."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[metrics_key].observe(
            _route(request), request.method, status, time.perf_counter() - started
        )


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: the node's metrics in the Prometheus text format."""
    body = generate_latest(request.app[metrics_key].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    """Give ``app`` its metrics (before it starts)."""
    app[metrics_key] = NodeMetrics(app)
