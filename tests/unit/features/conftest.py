"""Session fixtures: the shared recordings, verified weights, both models, the oracle's results.

Reads the shared audio (``SPOTREC_TEST_AUDIO_DIR``, default ``../shared/audio`` beside the repo),
the committed calibration file and the configured weights directory, which it fills with
``fetch_weights`` when the file is missing; writes nothing else. Everything expensive is built
once per session. ``extractor`` is the faithful ``choi2017`` whatever the configured default;
``calibrated`` is ``choi2017-calibrated``; both on every track's first 29 s.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from config.settings import PROJECT_ROOT, Settings, load_settings
from features.audio import decode
from features.calibration.stats import Calibration, read_calibration
from features.extractor import Choi2017Extractor, load_extractor
from features.runtime import configure_threads
from features.weights import CHOI2017_FILE, Choi2017Weights, fetch_weights, load_choi2017_weights
from tests.oracle.choi2017 import OracleOutput, OracleWeights, forward, read_weights

SHARED = PROJECT_ROOT.parent / "shared"
GOLDEN = SHARED / "models" / "choi2017" / "golden" / "golden_brahms.npz"
TAGS_TXT = SHARED / "models" / "choi2017" / "tags.txt"


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    kind: str
    duration_s: float


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    named = os.environ.get("SPOTREC_TEST_AUDIO_DIR")
    directory = Path(named) if named else SHARED / "audio"
    assert (directory / "labels.csv").is_file(), f"no labels.csv in {directory}"
    return directory


@pytest.fixture(scope="session")
def clips(audio_dir: Path) -> list[Clip]:
    with (audio_dir / "labels.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    found = [
        Clip(Path(r["file"]).stem, audio_dir / r["file"], r["kind"], float(r["duration_s"]))
        for r in rows
    ]
    assert len(found) >= 10, "the extractor tests need the shared recordings"
    return found


@pytest.fixture(scope="session")
def clip_by_name(clips: list[Clip]) -> dict[str, Clip]:
    return {clip.name: clip for clip in clips}


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session", autouse=True)
def _tensorflow_threads(settings: Settings) -> None:
    # Before any fixture builds a model: TensorFlow fixes its pools on the first op.
    configure_threads(settings.model.threads)


@pytest.fixture(scope="session")
def weights_path(settings: Settings) -> Path:
    model = settings.model
    weights_dir = settings.path(model.weights_dir)
    fetch_weights(
        weights_dir,
        source_dir=settings.path(model.weights_source),
        base_url=model.weights_url,
        timeout_s=model.download_timeout_s,
    )
    return weights_dir / CHOI2017_FILE


@pytest.fixture(scope="session")
def weights(weights_path: Path) -> Choi2017Weights:
    return load_choi2017_weights(weights_path.parent)


#: The Choi fixtures analyse the first 29 s of every track, the window of the golden vectors, of
#: the oracle and of the calibration (``test_choi_windows.py`` covers the default's windows).
FIRST_WINDOW = {"choi_windows": 0}


@pytest.fixture(scope="session")
def extractor(settings: Settings, weights_path: Path) -> Choi2017Extractor:
    loaded = load_extractor(
        settings.model.model_copy(update={"version": "choi2017", **FIRST_WINDOW})
    )
    assert isinstance(loaded, Choi2017Extractor)
    return loaded


@pytest.fixture(scope="session")
def calibrated(settings: Settings, weights_path: Path) -> Choi2017Extractor:
    loaded = load_extractor(
        settings.model.model_copy(update={"version": "choi2017-calibrated", **FIRST_WINDOW})
    )
    assert isinstance(loaded, Choi2017Extractor)
    return loaded


@pytest.fixture(scope="session")
def calibration(settings: Settings) -> Calibration:
    return read_calibration(settings.path(settings.model.calibration_file))


@pytest.fixture(scope="session")
def decoded(clips: list[Clip]) -> dict[str, npt.NDArray[np.float32]]:
    return {clip.name: decode(clip.path) for clip in clips}


@pytest.fixture(scope="session")
def oracle_weights(weights_path: Path) -> OracleWeights:
    return read_weights(weights_path)


@pytest.fixture(scope="session")
def oracle(
    decoded: dict[str, npt.NDArray[np.float32]], oracle_weights: OracleWeights
) -> dict[str, OracleOutput]:
    return {
        name: forward(audio.astype(np.float64), oracle_weights) for name, audio in decoded.items()
    }


@pytest.fixture(scope="session")
def golden() -> dict[str, npt.NDArray[np.float32]]:
    with np.load(GOLDEN) as arrays:
        return {key: arrays[key] for key in arrays.files}
