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
from config.settings import PROJECT_ROOT, Settings, load_settings
from features.audio import decode
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
def shared_clips(shared_items: list[Item]) -> list[F32]:
    return [decode(item.path) for item in shared_items]


@pytest.fixture(scope="session")
def calibrated_vectors(quality_settings: Settings, shared_clips: list[F32]) -> F32:
    return embed(extractor_for(quality_settings, "choi2017-calibrated"), shared_clips)


@pytest.fixture(scope="session")
def shuffled_vectors(quality_settings: Settings, shared_clips: list[F32]) -> F32:
    extractor = extractor_for(quality_settings, "choi2017-calibrated", shuffled=True)
    return embed(extractor, shared_clips)
