"""The MSD_musicnn checkpoint: where it is, its pinned sha256, and reading its variables.

Reads the TensorFlow-1 checkpoint ``MSD_musicnn/`` that the ``musicnn`` 0.1.0 wheel (PyPI, ISC
licence, Pons & Serra 2019) ships as package data; writes nothing. The wheel is installed without
its dependencies (they pin NumPy < 1.17) and used only as a weights container: none of its code
runs. Its two files are pinned by sha256, so a different or damaged checkpoint is refused; the
model version names the first 8 hex of the variables file's hash. Importing this module does not
import TensorFlow (query nodes resolve versions from it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from features.errors import WeightsCorrupt, WeightsMissing
from stores.files import digest

F32 = npt.NDArray[np.float32]

#: The checkpoint's files (its prefix is the empty name inside the folder) and their sha256.
PINNED_SHA256 = {
    ".data-00000-of-00001": "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
    ".index": "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
}
#: The hash the model version names: the variables file's.
WEIGHTS_SHA256 = PINNED_SHA256[".data-00000-of-00001"]
#: Parameters of the network without the optimiser's slots.
PARAMETERS = 792_079

#: Variable name -> shape, every variable the network reads (Adam slots are skipped).
SHAPES: dict[str, tuple[int, ...]] = {
    "conv2d/kernel": (7, 38, 1, 204),
    "conv2d/bias": (204,),
    "conv2d_1/kernel": (7, 67, 1, 204),
    "conv2d_1/bias": (204,),
    "conv2d_2/kernel": (128, 1, 1, 51),
    "conv2d_2/bias": (51,),
    "conv2d_3/kernel": (64, 1, 1, 51),
    "conv2d_3/bias": (51,),
    "conv2d_4/kernel": (32, 1, 1, 51),
    "conv2d_4/bias": (51,),
    "conv2d_5/kernel": (7, 561, 1, 64),
    "conv2d_5/bias": (64,),
    "conv2d_6/kernel": (7, 64, 1, 64),
    "conv2d_6/bias": (64,),
    "conv2d_7/kernel": (7, 64, 1, 64),
    "conv2d_7/bias": (64,),
    "dense/kernel": (1506, 200),
    "dense/bias": (200,),
    "dense_1/kernel": (200, 50),
    "dense_1/bias": (50,),
}
#: Batch norms in graph order: input, f74, f77, s128, s64, s32, mid 1-3, pooled, penultimate.
_NORM_SIZES = (1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200)
for _index, _size in enumerate(_NORM_SIZES):
    _scope = "batch_normalization" + (f"_{_index}" if _index else "")
    for _part in ("gamma", "beta", "moving_mean", "moving_variance"):
        SHAPES[f"{_scope}/{_part}"] = (_size,)


@dataclass(frozen=True)
class BatchNorm:
    """One inference-mode batch norm: ``gamma (x - mean) / sqrt(variance + 1e-3) + beta``."""

    gamma: F32
    beta: F32
    mean: F32
    variance: F32


def default_checkpoint() -> Path:
    """``MSD_musicnn`` inside the installed ``musicnn`` package (found without importing it).

    Raises:
        WeightsMissing: The wheel is not installed.
    """
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        msg = "the musicnn wheel is not installed; run `make install` (it installs it --no-deps)"
        raise WeightsMissing(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "MSD_musicnn"


def verify_checkpoint(folder: Path) -> str:
    """Check that the checkpoint's files exist and have their pinned sha256.

    Returns:
        The checkpoint prefix to read (the folder with a trailing separator: the files have
        an empty base name).

    Raises:
        WeightsMissing: A file is absent.
        WeightsCorrupt: A file's sha256 differs from the pin.
    """
    for name, expected in PINNED_SHA256.items():
        path = folder / name
        if not path.is_file():
            msg = f"checkpoint file {path} is missing; reinstall the musicnn wheel (`make install`)"
            raise WeightsMissing(msg)
        actual = digest(path)[0]
        if actual != expected:
            msg = f"checkpoint file {path} has sha256 {actual}, expected {expected}"
            raise WeightsCorrupt(msg)
    return f"{folder}/"


def load_musicnn_variables(folder: Path) -> dict[str, F32]:
    """Verify the checkpoint, then read every variable the network needs by name.

    ``tf.train.load_checkpoint`` resolves a folder through its ``checkpoint`` file, which in the
    wheel names its author's training directory; the reader it returns is opened on the prefix
    directly instead.

    Raises:
        WeightsMissing: A file or variable is absent.
        WeightsCorrupt: A hash or a variable's shape is wrong.
    """
    from features.runtime import tf  # TensorFlow only when a model is built

    prefix = verify_checkpoint(folder)
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    shapes = reader.get_variable_to_shape_map()
    variables: dict[str, F32] = {}
    for name, shape in SHAPES.items():
        if name not in shapes:
            msg = f"checkpoint {prefix} has no variable {name!r}"
            raise WeightsMissing(msg)
        value = np.asarray(reader.get_tensor(name), dtype=np.float32)
        if value.shape != shape:
            msg = f"checkpoint {prefix}: {name} has shape {value.shape}, expected {shape}"
            raise WeightsCorrupt(msg)
        variables[name] = value
    return variables


def batch_norms(variables: dict[str, F32]) -> list[BatchNorm]:
    """The eleven batch norms in graph order (see :data:`_NORM_SIZES`)."""
    norms = []
    for index in range(len(_NORM_SIZES)):
        scope = "batch_normalization" + (f"_{index}" if index else "")
        norms.append(
            BatchNorm(
                variables[f"{scope}/gamma"],
                variables[f"{scope}/beta"],
                variables[f"{scope}/moving_mean"],
                variables[f"{scope}/moving_variance"],
            )
        )
    return norms
