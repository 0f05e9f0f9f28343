"""Checking the musicnn-msd weights in place: the pinned wheel and the checkpoint it ships.

Reads the pin file (``config/musicnn-weights.txt``: the wheel's version and sha256, which
``make install`` hands to ``pip --require-hashes``), the installed ``musicnn`` distribution's
metadata (its version and the RECORD hashes of its checkpoint files) and the checkpoint files
themselves; writes nothing and imports neither TensorFlow nor the package. pip checked the
wheel's own sha256 when it installed it; what can be checked afterwards is that the installed
distribution is the pinned version, that its RECORD lists the checkpoint files with the hashes
this project pins (``features.musicnn_weights``), and that the files still have them: the hash
the model version names (``musicnn-msd.<first 8 hex>+...``) is the variables file's.
"""

from __future__ import annotations

import base64
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path

from features.errors import WeightsCorrupt, WeightsMissing
from features.musicnn_weights import PINNED_SHA256, WEIGHTS_SHA256, default_checkpoint
from features.musicnn_weights import verify_checkpoint as verify_checkpoint_files

#: The distribution that carries the checkpoint.
DISTRIBUTION = "musicnn"
#: The pin file, relative to the repository root.
PIN_FILE = Path("config/musicnn-weights.txt")
#: Where the checkpoint lies inside the distribution.
CHECKPOINT_IN_WHEEL = "musicnn/MSD_musicnn/"

_PIN = re.compile(
    rf"^\s*{DISTRIBUTION}==(?P<version>\S+)\s+--hash=sha256:(?P<sha256>[0-9a-f]{{64}})\s*$"
)


@dataclass(frozen=True)
class WheelPin:
    """The wheel a pin file names."""

    version: str
    sha256: str


@dataclass(frozen=True)
class MusicnnCheck:
    """What :func:`verify_musicnn_weights` checked.

    Attributes:
        checkpoint: The checkpoint folder whose files matched their pinned sha256.
        wheel: The pinned wheel the installed distribution matched, or None when the checkpoint
            was configured elsewhere (``SPOTREC_MODEL_MUSICNN_CHECKPOINT``) and no wheel is used.
        weights_sha256: The variables file's sha256, the hash the model version names.
    """

    checkpoint: Path
    wheel: WheelPin | None
    weights_sha256: str = WEIGHTS_SHA256


def read_pin(pin_file: Path) -> WheelPin:
    """The ``musicnn==V --hash=sha256:H`` line of a pin file.

    Raises:
        WeightsMissing: The file does not exist.
        WeightsCorrupt: It pins no musicnn wheel by version and hash.
    """
    try:
        text = pin_file.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"the musicnn pin file {pin_file} cannot be read: {exc.strerror or exc}"
        raise WeightsMissing(msg) from exc
    for line in text.splitlines():
        found = _PIN.match(line)
        if found:
            return WheelPin(found["version"], found["sha256"])
    msg = f"{pin_file} pins no {DISTRIBUTION} wheel as '{DISTRIBUTION}==VERSION --hash=sha256:HEX'"
    raise WeightsCorrupt(msg)


def _record_sha256(entry: importlib.metadata.PackagePath) -> str | None:
    """The hex sha256 a distribution's RECORD gives for a file (urlsafe base64 there)."""
    if entry.hash is None or entry.hash.mode != "sha256":
        return None
    raw = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
    return raw.hex()


def verify_installed_wheel(pin: WheelPin, pin_file: Path) -> None:
    """Check that the installed distribution is the pinned one, and records the pinned files.

    Raises:
        WeightsMissing: The wheel is not installed, or its RECORD lacks a checkpoint file.
        WeightsCorrupt: Another version is installed, or its RECORD gives a checkpoint file
            another sha256 than the pinned one.
    """
    fix = f"run `make install` (pip --no-deps --require-hashes -r {pin_file.name})"
    try:
        installed = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        msg = f"the {DISTRIBUTION} wheel (the musicnn-msd weights) is not installed; {fix}"
        raise WeightsMissing(msg) from exc
    if installed.version != pin.version:
        msg = (
            f"{DISTRIBUTION} {installed.version} is installed, but {pin_file} pins "
            f"{pin.version} (sha256 {pin.sha256[:12]}...); {fix}"
        )
        raise WeightsCorrupt(msg)
    recorded = {str(entry): _record_sha256(entry) for entry in installed.files or ()}
    for name, expected in PINNED_SHA256.items():
        path = CHECKPOINT_IN_WHEEL + name
        if path not in recorded:
            msg = f"the installed {DISTRIBUTION} {installed.version} records no {path}; {fix}"
            raise WeightsMissing(msg)
        if recorded[path] != expected:
            msg = (
                f"the installed {DISTRIBUTION} {installed.version} records {path} with sha256 "
                f"{recorded[path]}, not the pinned {expected}; {fix}"
            )
            raise WeightsCorrupt(msg)


def verify_musicnn_weights(checkpoint: Path | None, pin_file: Path) -> MusicnnCheck:
    """Check the musicnn-msd weights: the pinned wheel (when used) and the checkpoint's files.

    Args:
        checkpoint: ``SPOTREC_MODEL_MUSICNN_CHECKPOINT`` resolved, or None for the installed
            wheel's ``MSD_musicnn/``.
        pin_file: ``config/musicnn-weights.txt``.

    Raises:
        WeightsMissing: The wheel, the pin file or a checkpoint file is absent.
        WeightsCorrupt: Another wheel version, or a checkpoint file whose sha256 differs from
            the pin (the hash the model version names).
    """
    wheel = None
    if checkpoint is None:
        wheel = read_pin(pin_file)
        verify_installed_wheel(wheel, pin_file)
        checkpoint = default_checkpoint()
    verify_checkpoint_files(checkpoint)
    return MusicnnCheck(checkpoint, wheel)
