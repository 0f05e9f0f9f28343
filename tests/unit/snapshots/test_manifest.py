"""Manifests round-trip through JSON, and malformed ones are refused with a clear message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snapshots.errors import SnapshotCorrupt
from snapshots.manifest import DATA_FILES, VERSION_RE, FileEntry, Manifest, new_version

_SHA = "ab" * 32
_FILES = {name: FileEntry(_SHA, 100) for name in DATA_FILES}


def _manifest(**overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "version": "20261123T220501.123Z-1a2b3c4d",
        "model_version": "choi2017",
        "count": 3,
        "dim": 160,
        "trees": 10,
        "files": _FILES,
        "built_at": datetime(2026, 11, 23, 22, 5, 1, 123000, tzinfo=UTC),
        "source_mark": 1_795_000_000_123,
    }
    fields.update(overrides)
    return Manifest(**fields)


def _dict(**overrides: Any) -> dict[str, Any]:
    data = _manifest().to_dict()
    data.update(overrides)
    return data


def test_json_round_trip_is_exact_and_stable() -> None:
    manifest = _manifest()
    raw = manifest.to_json()
    assert Manifest.from_json(raw) == manifest
    assert Manifest.from_json(raw).to_json() == raw
    data = json.loads(raw)
    assert data["format"] == 2
    assert data["metric"] == "angular"
    assert data["transform"] is None
    assert data["files"]["index.ann"] == {"sha256": _SHA, "size": 100}


def test_recall_and_search_settings_are_kept() -> None:
    recall = {"at": 10, "sample": 1000, "target": 0.99, "lists": 0.995, "search": 0.991}
    manifest = _manifest(neighbours=32, search_k=880, recall=recall)
    back = Manifest.from_json(manifest.to_json())
    assert (back.neighbours, back.search_k, back.recall) == (32, 880, recall)


def test_transform_is_kept() -> None:
    manifest = _manifest(transform={"kind": "zscore", "mean": [0.0], "std": [1.0]})
    assert Manifest.from_json(manifest.to_json()).transform == manifest.transform


def test_missing_tracks_make_a_snapshot_incomplete() -> None:
    incomplete = _manifest(missing=4)
    assert not incomplete.complete
    assert Manifest.from_json(incomplete.to_json()).missing == 4
    assert _manifest().complete


def test_a_manifest_written_before_the_missing_field_reads_as_complete() -> None:
    data = _dict()
    del data["missing"]
    manifest = Manifest.from_json(json.dumps(data).encode())
    assert (manifest.missing, manifest.complete) == (0, True)


def test_versions_are_fixed_width_and_sort_by_time() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    versions = [new_version(start + timedelta(milliseconds=ms)) for ms in (0, 1, 999, 1000, 61_000)]
    assert all(VERSION_RE.match(v) for v in versions)
    assert sorted(versions) == versions
    assert versions[2].startswith("20260101T000000.999Z-")
    assert new_version(start) != new_version(start)  # random suffix


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_dict(format=1), "expected manifest format 2, got 1"),
        ({k: v for k, v in _dict().items() if k != "count"}, r"missing fields \['count'\]"),
        (_dict(extra=1), r"unknown fields \['extra'\]"),
        (_dict(count=0), "count must be a positive integer"),
        (_dict(count=True), "count must be a positive integer"),
        (_dict(metric="euclidean"), "metric must be 'angular'"),
        (_dict(model_version="../etc"), "model_version must match"),
        (_dict(version="latest"), "version must look like"),
        (_dict(files={"index.ann": {"sha256": _SHA, "size": 1}}), "files must list exactly"),
        (
            _dict(
                files={
                    **_dict()["files"],
                    "index.ann": {"sha256": "xyz", "size": 1},
                    "tracks.jsonl": {},
                }
            ),
            "malformed manifest field",
        ),
        (
            _dict(
                files={
                    **_dict()["files"],
                    "index.ann": {"sha256": "xyz", "size": 1},
                    "tracks.jsonl": {"sha256": _SHA, "size": -1},
                }
            ),
            r"sha256 must be 64 hex digits.*size must be a non-negative integer",
        ),
        (_dict(neighbours=-1), "neighbours must be a non-negative integer"),
        (_dict(search_k=-2), "search_k must be an integer of at least -1"),
        (_dict(recall=[0.9]), "recall must be an object or null"),
        (_dict(built_at="yesterday"), "malformed manifest field"),
        (_dict(built_at="2026-11-23T22:05:01"), "built_at must be a time with a zone"),
        (_dict(source_mark="soon"), "source_mark must be an integer or null"),
        (_dict(transform=[1]), "transform must be an object or null"),
        (_dict(missing=-1), "missing must be a non-negative integer"),
        (_dict(missing=None), "missing must be a non-negative integer"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_malformed_manifest_is_refused(data: Any, message: str) -> None:
    with pytest.raises(SnapshotCorrupt, match=message) as err:
        Manifest.from_json(json.dumps(data).encode(), source="snapshots/x/manifest.json")
    assert str(err.value).startswith("snapshots/x/manifest.json: ")


def test_bytes_that_are_not_json_are_corrupt() -> None:
    with pytest.raises(SnapshotCorrupt, match="not valid JSON"):
        Manifest.from_json(b"\x00{")


def test_an_invalid_manifest_cannot_be_constructed_either() -> None:
    with pytest.raises(SnapshotCorrupt, match="dim must be a positive integer"):
        _manifest(dim=0)
