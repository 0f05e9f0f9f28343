"""Model versions by name, importable without TensorFlow (query nodes and the indexer need them).

Reads the calibration file of ``choi2017-calibrated`` (``SPOTREC_MODEL_CALIBRATION_FILE``), whose
content hash is part of that model's version; nothing else. A version string names the model and
the preprocessing: ``choi2017+sf-soxrhq-12k-29s`` for the faithful per-example model,
``choi2017-calibrated.<first 8 hex of the calibration file's hash>+sf-soxrhq-12k-29s`` for the
model with frozen statistics, so recalibrating gives vectors a new version and snapshots never mix
them. The extractor registry builds its versions from :data:`MODEL_VERSIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config.settings import PROJECT_ROOT, ModelSettings
from features.calibration.stats import MODEL_NAME as CALIBRATED
from features.calibration.stats import read_calibration
from features.errors import UnknownModel

#: The audio decode path every current model shares (see ``features.audio``).
DECODE_TAG = "sf-soxrhq-12k-29s"

#: The faithful port: batch-norm statistics of each clip alone, as the original extractor ran.
FAITHFUL = "choi2017"


def calibrated_version(content_sha256: str) -> str:
    """The full version of ``choi2017-calibrated`` with the calibration file of that hash."""
    return f"{CALIBRATED}.{content_sha256[:8]}+{DECODE_TAG}"


def _faithful(model: ModelSettings, root: Path) -> str:
    return f"{FAITHFUL}+{DECODE_TAG}"


def _calibrated(model: ModelSettings, root: Path) -> str:
    path = model.calibration_file
    calibration = read_calibration(path if path.is_absolute() else root / path)
    return calibrated_version(calibration.content_sha256)


#: How a snapshot compares a model's vectors: ``zscore`` standardises every dimension first
#: (with statistics fitted on the snapshot's own vectors, see ``snapshots.transform``), ``cosine``
#: compares the vectors as the extractor gives them.
RetrievalSpace = Literal["cosine", "zscore"]


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline knows of a model without loading it.

    Attributes:
        dim: Length of the model's vectors.
        retrieval_space: How snapshots compare its vectors.
        version: Its full version under the given settings (paths relative to the root).
    """

    dim: int
    retrieval_space: RetrievalSpace
    version: Callable[[ModelSettings, Path], str]


#: Model name -> its spec. Choi's dimensions differ in scale by orders of magnitude (block 5's
#: averages dwarf block 1's), so its vectors are z-scored before they are compared.
MODELS: dict[str, ModelSpec] = {
    FAITHFUL: ModelSpec(dim=160, retrieval_space="zscore", version=_faithful),
    CALIBRATED: ModelSpec(dim=160, retrieval_space="zscore", version=_calibrated),
}

#: Model name -> its full version under the given settings (paths relative to the root).
MODEL_VERSIONS: dict[str, Callable[[ModelSettings, Path], str]] = {
    name: spec.version for name, spec in MODELS.items()
}


def model_name_of(version: str) -> str:
    """The model name in a name or a full version (``choi2017-calibrated.1a2b3c4d+...``)."""
    return version.partition("+")[0].partition(".")[0]


def model_spec(version: str) -> ModelSpec:
    """The spec of the model that a name or a full version names.

    Raises:
        UnknownModel: No model has that name.
    """
    spec = MODELS.get(model_name_of(version))
    if spec is None:
        msg = f"{version!r} is not a version of a known model; known: {', '.join(sorted(MODELS))}"
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
