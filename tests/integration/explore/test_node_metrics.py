"""The query node's ``/metrics``: requests by route and status, latency, the snapshot served
and the recall it measured."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from api.keys import holder_key
from api.metrics import _recall_figures
from tests.integration.explore.conftest import Node


async def _samples(node: Node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await node.client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def _requests(route: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"route": route, "method": "GET", "status": status}
    return "spotrec_http_requests_total", tuple(sorted(labels.items()))


async def test_requests_are_counted_by_route_template_and_status(node: Node) -> None:
    before = await _samples(node)
    for q in ("halo", "bey", "chopin"):
        assert (await node.client.get("/search", params={"q": q})).status == 200
    for track_id in ("t:nope1", "t:nope2"):
        assert (await node.client.get(f"/tracks/{track_id}")).status == 404
    assert (await node.client.get("/no/such/route")).status == 404
    after = await _samples(node)

    def moved(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved(_requests("/search", "200")) == 3
    assert moved(_requests("/tracks/{track_id}", "404")) == 2
    assert moved(_requests("unmatched", "404")) == 1
    latency = ("spotrec_http_request_duration_seconds_count", (("route", "/search"),))
    assert moved(latency) == 3
    # No series per raw path: track ids never become label values.
    assert not any("t:nope1" in str(labels) for _, labels in after)


async def test_the_snapshot_served_is_described(node: Node) -> None:
    samples = await _samples(node)
    info = (("model", node.model_version), ("version", node.version))
    assert samples[("spotrec_snapshot_info", info)] == 1.0
    assert samples[("spotrec_snapshot_tracks", ())] == 5.0
    assert samples[("spotrec_snapshot_age_seconds", ())] >= 0.0
    assert samples[("spotrec_snapshot_swaps_total", ())] >= 1.0
    assert samples[("spotrec_snapshot_refusals_total", ())] == 0.0
    assert samples[("spotrec_search_index_build_seconds", ())] > 0.0


async def test_the_recall_the_snapshot_measured_is_exported(node: Node) -> None:
    samples = await _samples(node)
    view = node.client.app[holder_key].current
    assert view is not None
    recall = view.manifest.recall
    assert recall is not None
    at = str(recall["at"])
    for way in ("lists", "search"):
        exported = samples[("spotrec_snapshot_recall", (("at", at), ("way", way)))]
        assert exported == float(recall[way])
        assert 0.0 <= exported <= 1.0


def test_snapshots_without_recall_figures_export_none() -> None:
    assert list(_recall_figures(None)) == []
    assert list(_recall_figures({"at": 10, "lists": "n/a", "search": True})) == []
    assert list(_recall_figures({"at": 10, "lists": 0.5, "search": 1})) == [
        ("lists", 0.5),
        ("search", 1.0),
    ]
