"""Session fixtures: the shared recordings with their genres, decoded once, and their vectors.

Reads the shared audio (``SPOTREC_TEST_AUDIO_DIR``, default ``../shared/audio`` beside the repo),
the committed calibration file and the configured weights directory, which it fills with
``fetch_weights`` when the file is missing; writes nothing else. Each model embeds every clip once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bench.quality import Item, embed, extractor_for, read_items
from config.settings import PROJECT_ROOT, ModelSettings, Settings, load_settings
from features.runtime import configure_threads
from features.weights import fetch_weights

F32 = npt.NDArray[np.float32]


@pytest.fixture(scope="session")
def quality_settings() -> Settings:
    settings = load_settings()
    # Before any model is built: TensorFlow fixes its thread pools on the first op.
    configure_threads(settings.model.threads)
    model = settings.model
    fetch_weights(
        settings.path(model.weights_dir),
        source_dir=settings.path(model.weights_source),
        base_url=model.weights_url,
        timeout_s=model.download_timeout_s,
    )
    return settings


@pytest.fixture(scope="session")
def shared_items() -> list[Item]:
    named = os.environ.get("SPOTREC_TEST_AUDIO_DIR")
    folder = Path(named) if named else PROJECT_ROOT.parent / "shared" / "audio"
    items = read_items(folder, "genre")
    assert len(items) == 17, f"the quality tests need the 17 shared recordings in {folder}"
    return items


@pytest.fixture(scope="session")
def shared_paths(shared_items: list[Item]) -> list[Path]:
    return [item.path for item in shared_items]


def _calibrated(settings: Settings) -> ModelSettings:
    return settings.model.model_copy(update={"version": "choi2017-calibrated"})


@pytest.fixture(scope="session")
def calibrated_vectors(quality_settings: Settings, shared_paths: list[Path]) -> F32:
    return embed(extractor_for(quality_settings, _calibrated(quality_settings)), shared_paths)


@pytest.fixture(scope="session")
def shuffled_vectors(quality_settings: Settings, shared_paths: list[Path]) -> F32:
    model = _calibrated(quality_settings)
    return embed(extractor_for(quality_settings, model, shuffled=True), shared_paths)
