"""The calibration file: 5 x 32 frozen channel means and variances, their provenance, a hash.

Reads and writes one JSON file (``features/calibration/choi2017-calibrated.json`` by default,
``SPOTREC_MODEL_CALIBRATION_FILE``). Importing this module loads no TensorFlow: query nodes and the
indexer read the file only to learn the model version, which embeds the first 8 hex digits of the
content hash, so any change to the statistics or their provenance is a new model version.

The file holds, per block, the mean and biased variance of the conv output of the *original*
(unfolded) network over a calibration corpus, the names and sha256 of the clips, the sha256 of
the weight file, the decode path and the estimator version; ``content_sha256`` is the sha256 of
the canonical JSON (sorted keys, no spaces) of everything else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from features.errors import CalibrationCorrupt, CalibrationMissing

F64 = npt.NDArray[np.float64]

#: Version of the file layout; a reader refuses any other.
FORMAT = "spotrec.choi2017-calibration.v1"
#: Version of the estimation procedure (``features.calibration.estimate``); bump it whenever the
#: numbers it produces for the same clips would change.
ESTIMATOR = "sequential-frozen-float64.v1"
#: The model these statistics belong to.
MODEL_NAME = "choi2017-calibrated"
N_BLOCKS = 5
CHANNELS = 32
#: Nine significant digits round-trip float32 exactly, and the network uses float32 constants;
#: more digits would only record float64 summation noise that differs between machines.
_DIGITS = 9


@dataclass(frozen=True)
class CalibrationClip:
    """One clip of the calibration corpus: its path relative to the corpus folder, its sha256."""

    file: str
    sha256: str


@dataclass(frozen=True)
class Calibration:
    """The contents of a calibration file.

    Attributes:
        means: Per block, the conv output's channel means, ``(32,)`` float64.
        variances: Per block, the channel biased variances, ``(32,)`` float64.
        clips: The corpus the statistics were estimated on.
        weights_file: Name of the weight file.
        weights_sha256: Its sha256; the statistics are meaningless for other weights.
        decode: The decode path's tag (``features.versions.DECODE_TAG``).
        estimator: :data:`ESTIMATOR` of the code that estimated them.
        content_sha256: sha256 of the canonical JSON of all the above.
    """

    means: tuple[F64, ...]
    variances: tuple[F64, ...]
    clips: tuple[CalibrationClip, ...]
    weights_file: str
    weights_sha256: str
    decode: str
    estimator: str
    content_sha256: str

    @property
    def statistics(self) -> tuple[tuple[F64, F64], ...]:
        """``(mean, variance)`` per block, as ``features.normalization.frozen_statistics`` takes."""
        return tuple(zip(self.means, self.variances, strict=True))


def _rounded(values: npt.ArrayLike) -> list[float]:
    return [float(f"{float(v):.{_DIGITS}g}") for v in np.asarray(values, dtype=np.float64)]


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def _content(calibration: Calibration) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model": MODEL_NAME,
        "blocks": [
            {"block": index + 1, "mean": _rounded(mean), "variance": _rounded(variance)}
            for index, (mean, variance) in enumerate(calibration.statistics)
        ],
        "provenance": {
            "clips": [{"file": c.file, "sha256": c.sha256} for c in calibration.clips],
            "weights": {"file": calibration.weights_file, "sha256": calibration.weights_sha256},
            "decode": calibration.decode,
            "estimator": calibration.estimator,
        },
    }


def make_calibration(
    statistics: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]],
    clips: Sequence[CalibrationClip],
    *,
    weights_file: str,
    weights_sha256: str,
    decode: str,
    estimator: str = ESTIMATOR,
) -> Calibration:
    """Round the statistics as the file stores them and compute the content hash.

    Args:
        statistics: Per block, ``(mean, variance)`` of the original network's conv output.
        clips: The corpus, in the order it was read.
        weights_file: Name of the weight file.
        weights_sha256: Its sha256.
        decode: The decode path's tag.
        estimator: Version of the estimation procedure.

    Returns:
        The calibration, equal to what :func:`read_calibration` returns for the written file.
    """
    draft = Calibration(
        means=tuple(np.asarray(_rounded(m)) for m, _ in statistics),
        variances=tuple(np.asarray(_rounded(v)) for _, v in statistics),
        clips=tuple(clips),
        weights_file=weights_file,
        weights_sha256=weights_sha256,
        decode=decode,
        estimator=estimator,
        content_sha256="",
    )
    _check_shapes(draft, "the estimated statistics")
    digest = hashlib.sha256(_canonical(_content(draft))).hexdigest()
    return dataclasses.replace(draft, content_sha256=digest)


def _check_shapes(calibration: Calibration, what: str) -> None:
    shapes_ok = len(calibration.means) == N_BLOCKS and all(
        m.shape == (CHANNELS,) and v.shape == (CHANNELS,) for m, v in calibration.statistics
    )
    if not shapes_ok:
        msg = f"{what}: expected {N_BLOCKS} blocks of {CHANNELS} means and variances"
        raise CalibrationCorrupt(msg)
    for index, (mean, variance) in enumerate(calibration.statistics):
        if not (np.isfinite(mean).all() and np.isfinite(variance).all()):
            msg = f"{what}: block {index + 1} has non-finite statistics"
            raise CalibrationCorrupt(msg)
        if (variance < 0).any():
            msg = f"{what}: block {index + 1} has a negative variance"
            raise CalibrationCorrupt(msg)
    if not calibration.clips:
        msg = f"{what}: no calibration clips are recorded"
        raise CalibrationCorrupt(msg)


def write_calibration(path: Path, calibration: Calibration) -> None:
    """Write the file atomically (beside it, then renamed), indented for readable diffs."""
    document = {**_content(calibration), "content_sha256": calibration.content_sha256}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(json.dumps(document, indent=2) + "\n")
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _parse(data: Any, path: Path) -> Calibration:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        msg = f"{path}: format {found!r}, expected {FORMAT!r}"
        raise CalibrationCorrupt(msg)
    if data.get("model") != MODEL_NAME:
        msg = f"{path}: statistics of model {data.get('model')!r}, expected {MODEL_NAME!r}"
        raise CalibrationCorrupt(msg)
    try:
        blocks = data["blocks"]
        provenance = data["provenance"]
        if [block["block"] for block in blocks] != list(range(1, N_BLOCKS + 1)):
            msg = f"{path}: blocks must be numbered 1 to {N_BLOCKS} in order"
            raise CalibrationCorrupt(msg)
        calibration = Calibration(
            means=tuple(np.asarray(b["mean"], dtype=np.float64) for b in blocks),
            variances=tuple(np.asarray(b["variance"], dtype=np.float64) for b in blocks),
            clips=tuple(
                CalibrationClip(str(c["file"]), str(c["sha256"])) for c in provenance["clips"]
            ),
            weights_file=str(provenance["weights"]["file"]),
            weights_sha256=str(provenance["weights"]["sha256"]),
            decode=str(provenance["decode"]),
            estimator=str(provenance["estimator"]),
            content_sha256=str(data["content_sha256"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{path}: malformed calibration file: {exc!r}"
        raise CalibrationCorrupt(msg) from exc
    _check_shapes(calibration, str(path))
    return calibration


def read_calibration(path: Path) -> Calibration:
    """Read and verify a calibration file.

    Args:
        path: The file.

    Returns:
        Its contents, with the statistics as float64 arrays.

    Raises:
        CalibrationMissing: The file does not exist.
        CalibrationCorrupt: It is not valid JSON of this format, has wrong shapes or non-finite
            values, or its ``content_sha256`` does not match its contents (an edit that forgot
            to rehash would otherwise keep the old model version).
    """
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        msg = f"calibration file {path} is missing; run `spotrec calibrate FOLDER --out {path}`"
        raise CalibrationMissing(msg) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{path}: not JSON: {exc}"
        raise CalibrationCorrupt(msg) from exc
    calibration = _parse(data, path)
    content = {key: value for key, value in data.items() if key != "content_sha256"}
    actual = hashlib.sha256(_canonical(content)).hexdigest()
    if actual != calibration.content_sha256:
        msg = (
            f"{path}: content hash {actual} differs from the recorded "
            f"{calibration.content_sha256}; regenerate it with `spotrec calibrate`"
        )
        raise CalibrationCorrupt(msg)
    return calibration
