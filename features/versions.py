"""Model versions by name, importable without TensorFlow (query nodes and the indexer need them).

Reads the calibration file of ``choi2017-calibrated`` (``SPOTREC_MODEL_CALIBRATION_FILE``), whose
content hash is part of that model's version; nothing else. A version string names the model and
the preprocessing: ``choi2017+sf-soxrhq-12k-29sx3`` for the faithful per-example model,
``choi2017-calibrated.<first 8 hex of the calibration file's hash>+sf-soxrhq-12k-29sx3`` for the
model with frozen statistics, so recalibrating gives vectors a new version and snapshots never mix
them. The Choi decode tag names the window rule: ``29sxN`` is N 29-s windows spread evenly over a
track longer than a preview and averaged, a preview keeping its single window from the start
(``SPOTREC_MODEL_CHOI_WINDOWS``, default 3); plain ``29s`` is the first 29 s of every track (0).
``musicnn-msd.<first 8 hex of the checkpoint's hash>+sf-soxrhq-16k-3sx<patches>`` for the
MSD_musicnn port (16 kHz, 3-s patches, at most ``SPOTREC_MODEL_MAX_PATCHES`` of them per track).

:data:`MODELS` describes every model by name: its version under given settings, the length of
its vectors (``dim``) and the space retrieval compares them in (``retrieval_space``: ``"zscore"``,
cosine after z-scoring with the snapshot's statistics, or ``"cosine"``, plain cosine of the raw
vectors). The extractor registry builds its versions from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config.settings import PROJECT_ROOT, ModelSettings
from features.calibration.stats import MODEL_NAME as CALIBRATED
from features.calibration.stats import read_calibration
from features.errors import UnknownModel
from features.musicnn_weights import WEIGHTS_SHA256 as MUSICNN_WEIGHTS_SHA256

#: The audio decode path every current model shares (see ``features.audio``).
DECODE_TAG = "sf-soxrhq-12k-29s"

#: The faithful port: batch-norm statistics of each clip alone, as the original extractor ran.
FAITHFUL = "choi2017"

#: The MSD_musicnn port (``features.musicnn``).
MUSICNN = "musicnn-msd"

#: How retrieval compares a model's vectors: cosine of z-scored vectors, or plain cosine.
RetrievalSpace = Literal["zscore", "cosine"]


def choi_decode_tag(windows: int = 0) -> str:
    """The Choi models' decode tag: :data:`DECODE_TAG`, plus ``xN`` for N windows over long tracks.

    ``windows == 0`` is the first 29 s of every track; N >= 1 spreads N windows over a track
    longer than a preview (``features.audio.decode_windows``) and averages their vectors, a
    preview keeping its one window from the start (the same samples as with 0).
    """
    return DECODE_TAG if windows == 0 else f"{DECODE_TAG}x{windows}"


_CHOI_TAG = re.compile(rf"\+{re.escape(DECODE_TAG)}(?:x([1-9][0-9]*))?$")


def windows_of(version: str) -> int | None:
    """The window count a full Choi version names (0: first 29 s), or None for anything else."""
    if model_name_of(version) not in (FAITHFUL, CALIBRATED):
        return None
    found = _CHOI_TAG.search(version)
    if found is None:
        return None
    return int(found.group(1) or 0)


def pinned_windows(model: ModelSettings) -> ModelSettings:
    """The settings with the window count a full Choi version names, unless set explicitly.

    A deployment that pinned the full version of an earlier default
    (``choi2017-calibrated.22895a83+sf-soxrhq-12k-29s``) keeps computing that version after the
    default count changed; an explicit ``SPOTREC_MODEL_CHOI_WINDOWS`` is never overridden (a
    mismatch is then refused by :func:`model_version_of`).
    """
    windows = windows_of(model.version)
    if windows is None or "choi_windows" in model.model_fields_set:
        return model
    if windows == model.choi_windows:
        return model
    return model.model_copy(update={"choi_windows": windows})


def calibrated_version(content_sha256: str, windows: int = 0) -> str:
    """The full version of ``choi2017-calibrated`` with the calibration file of that hash."""
    return f"{CALIBRATED}.{content_sha256[:8]}+{choi_decode_tag(windows)}"


def _faithful(model: ModelSettings, root: Path) -> str:
    return f"{FAITHFUL}+{choi_decode_tag(model.choi_windows)}"


def _calibrated(model: ModelSettings, root: Path) -> str:
    path = model.calibration_file
    calibration = read_calibration(path if path.is_absolute() else root / path)
    return calibrated_version(calibration.content_sha256, model.choi_windows)


def musicnn_version(max_patches: int) -> str:
    """The full version of ``musicnn-msd`` embedding at most ``max_patches`` 3-s patches."""
    return f"{MUSICNN}.{MUSICNN_WEIGHTS_SHA256[:8]}+sf-soxrhq-16k-3sx{max_patches}"


def _musicnn(model: ModelSettings, root: Path) -> str:
    return musicnn_version(model.max_patches)


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the system needs to know about a model, without loading it.

    Attributes:
        name: The model name (``SPOTREC_MODEL_VERSION`` may name it).
        dim: The length of its vectors.
        retrieval_space: ``"zscore"`` (z-score with the snapshot's statistics, then cosine) or
            ``"cosine"`` (plain cosine: measured better for musicnn than z-scoring with the
            statistics of a small set).
        resolve: Its full version under the given settings (paths relative to the root).
    """

    name: str
    dim: int
    retrieval_space: RetrievalSpace
    resolve: Callable[[ModelSettings, Path], str]

    def version(self, model: ModelSettings, *, root: Path = PROJECT_ROOT) -> str:
        """The full version under ``model`` (``settings.model``)."""
        return self.resolve(model, root)


#: Every model by name.
MODELS: dict[str, ModelSpec] = {
    FAITHFUL: ModelSpec(FAITHFUL, 160, "zscore", _faithful),
    CALIBRATED: ModelSpec(CALIBRATED, 160, "zscore", _calibrated),
    MUSICNN: ModelSpec(MUSICNN, 200, "cosine", _musicnn),
}

#: Model name -> its full version under the given settings (paths relative to the root).
MODEL_VERSIONS: dict[str, Callable[[ModelSettings, Path], str]] = {
    name: spec.resolve for name, spec in MODELS.items()
}


def model_name_of(version: str) -> str:
    """The model name in a name or a full version (``choi2017-calibrated.1a2b3c4d+...``)."""
    return version.partition("+")[0].partition(".")[0]


def model_spec(version: str) -> ModelSpec:
    """The spec of the model a name or full version names.

    Raises:
        UnknownModel: No model has that name.
    """
    spec = MODELS.get(model_name_of(version))
    if spec is None:
        msg = f"{version!r} names no known model; known: {', '.join(sorted(MODELS))}"
        raise UnknownModel(msg)
    return spec


def model_version_of(model: ModelSettings, *, root: Path = PROJECT_ROOT) -> str:
    """The full version the settings select (``SPOTREC_MODEL_VERSION`` is a name or a version).

    Args:
        model: ``settings.model``.
        root: Directory that a relative ``calibration_file`` is resolved against.

    Raises:
        UnknownModel: No model has that name, or the full version does not match it (for the
            calibrated model: the configured calibration file has another hash).
        CalibrationError: The calibrated model's file is missing or corrupt.
    """
    model = pinned_windows(model)
    name = model_name_of(model.version)
    resolve = MODEL_VERSIONS.get(name)
    version = None if resolve is None else resolve(model, root)
    if version is None or model.version not in (name, version):
        known = ", ".join(sorted(MODEL_VERSIONS))
        current = f" (the configured one is {version})" if version is not None else ""
        msg = (
            f"SPOTREC_MODEL_VERSION={model.version!r} is not a known model{current}; known: {known}"
        )
        raise UnknownModel(msg)
    return version
