"""A real snapshot of the synthetic catalogue (see ``tests.catalogues``), built once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snapshots.builder import write_snapshot
from snapshots.index import LoadedSnapshot
from tests.catalogues import Catalogue, tracks


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return tracks()


@pytest.fixture(scope="module")
def snapshot(
    catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadedSnapshot]:
    folder: Path = tmp_path_factory.mktemp("snapshot")
    write_snapshot(folder, catalogue.tracks, model_version="m", trees=10, source_mark=None)
    loaded = LoadedSnapshot.open(folder)
    yield loaded
    loaded.close()
