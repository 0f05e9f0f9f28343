"""The Choi 2017 weight file: pinned sha256, verification, loading by dataset name, fetching.

Reads ``weights_layer4_theano.hdf5`` (a Keras-1 / Theano ``save_weights`` file, MIT, Copyright (c)
2016 Keunwoo Choi) from the configured weights directory. :func:`fetch_weights` writes that file
into the directory, copied from a local mirror when one exists, else downloaded from the upstream
repository at a pinned commit; either way it lands only after its sha256 matches.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import numpy.typing as npt

from features.errors import WeightsCorrupt, WeightsMissing, WeightsUnavailable
from stores.files import digest

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

#: The one file the model needs: all five conv blocks, the front end's kernels and the tag head.
#: ``weights_theano.hdf5`` upstream is byte-identical; ``weights_layer{0..3}`` are truncations.
CHOI2017_FILE = "weights_layer4_theano.hdf5"

#: sha256 of every file we accept, pinned so that a swapped or damaged file is refused.
PINNED_SHA256 = {
    CHOI2017_FILE: "caf89f811415691fbb245be7eef394b9cebd787d7e3f78e29695972141cf2a08",
}

_N_BLOCKS = 5


@dataclass(frozen=True)
class Choi2017Weights:
    """The arrays of the weight file, in the layouts the file stores them.

    Attributes:
        dft_real: Periodic-Hann-windowed cosine kernels, (512, 257).
        dft_imag: The matching sine kernels, (512, 257).
        mel_basis: Slaney mel filterbank, (257, 96): 12 kHz, n_fft 512, 0-6000 Hz.
        conv_kernels: Five Theano kernels (32, C_in, 3, 3), stored for true convolution.
        conv_biases: Five (32,) biases.
        norm_gamma: Five (32,) batch-norm scales.
        norm_beta: Five (32,) batch-norm offsets.
        dense_kernel: The tag head's (32, 50) matrix.
        dense_bias: The tag head's (50,) bias.
    """

    dft_real: F32
    dft_imag: F32
    mel_basis: F32
    conv_kernels: tuple[F32, ...]
    conv_biases: tuple[F32, ...]
    norm_gamma: tuple[F32, ...]
    norm_beta: tuple[F32, ...]
    dense_kernel: F32
    dense_bias: F32


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return digest(path)[0]


def verify_weights(weights_dir: Path, name: str = CHOI2017_FILE) -> Path:
    """Check that a weight file exists and has its pinned sha256.

    Args:
        weights_dir: The configured weights directory.
        name: The file's name, a key of :data:`PINNED_SHA256`.

    Returns:
        The verified file's path.

    Raises:
        WeightsMissing: The file is absent.
        WeightsCorrupt: Its sha256 differs from the pinned value.
    """
    path = weights_dir / name
    if not path.is_file():
        msg = f"weight file {path} is missing; run `spotrec weights fetch` (or `make weights`)"
        raise WeightsMissing(msg)
    actual = sha256_of(path)
    if actual != PINNED_SHA256[name]:
        msg = (
            f"weight file {path} has sha256 {actual}, expected {PINNED_SHA256[name]}; "
            "delete it and run `spotrec weights fetch`"
        )
        raise WeightsCorrupt(msg)
    return path


def _dataset(file: h5py.File, key: str, shape: tuple[int, ...]) -> F32:
    if key not in file:
        msg = f"{file.filename} has no dataset {key!r}"
        raise WeightsMissing(msg)
    array = np.asarray(file[key], dtype=np.float32)
    if array.shape != shape:
        msg = f"{file.filename}:{key} has shape {array.shape}, expected {shape}"
        raise WeightsCorrupt(msg)
    return array


def load_choi2017_weights(weights_dir: Path) -> Choi2017Weights:
    """Verify the weight file, then read every array by its dataset name.

    Keras-1 lists the weights of the nested ``ConvBNEluDr`` model with the running statistics
    last, so reading by position would mismatch them; names are unambiguous.

    Args:
        weights_dir: The configured weights directory.

    Returns:
        The arrays, unflipped and in the file's layouts.

    Raises:
        WeightsMissing: The file or one of its datasets is absent.
        WeightsCorrupt: The sha256 or a dataset's shape is wrong.
    """
    path = verify_weights(weights_dir)
    with h5py.File(path, "r") as file:
        kernels, biases, gammas, betas = [], [], [], []
        for block in range(1, _N_BLOCKS + 1):
            c_in = 1 if block == 1 else 32
            kernels.append(_dataset(file, f"ConvBNEluDr/convolution2d_{block}_W", (32, c_in, 3, 3)))
            biases.append(_dataset(file, f"ConvBNEluDr/convolution2d_{block}_b", (32,)))
            gammas.append(_dataset(file, f"ConvBNEluDr/batchnormalization_{block}_gamma", (32,)))
            betas.append(_dataset(file, f"ConvBNEluDr/batchnormalization_{block}_beta", (32,)))
        return Choi2017Weights(
            dft_real=_dataset(file, "melgram/param_0", (512, 1, 1, 257))[:, 0, 0, :],
            dft_imag=_dataset(file, "melgram/param_1", (512, 1, 1, 257))[:, 0, 0, :],
            mel_basis=_dataset(file, "melgram/param_2", (257, 96)),
            conv_kernels=tuple(kernels),
            conv_biases=tuple(biases),
            norm_gamma=tuple(gammas),
            norm_beta=tuple(betas),
            dense_kernel=_dataset(file, "dense_1/dense_1_W", (32, 50)),
            dense_bias=_dataset(file, "dense_1/dense_1_b", (50,)),
        )


def _download(url: str, target: Path, timeout_s: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        msg = f"downloading {url} failed: {exc}"
        raise WeightsUnavailable(msg) from exc


def fetch_weights(
    weights_dir: Path,
    *,
    source_dir: Path | None,
    base_url: str,
    timeout_s: float = 60.0,
    name: str = CHOI2017_FILE,
) -> Literal["present", "copied", "downloaded"]:
    """Put a verified weight file into ``weights_dir``.

    A file already there with the right sha256 is kept. Otherwise the file is copied from
    ``source_dir`` when that directory holds it, else downloaded from ``base_url/name``. The new
    file is written beside the target and renamed into place only after its sha256 matches, so
    an interrupted or altered fetch never leaves a file that looks valid.

    Args:
        weights_dir: The configured weights directory; created if needed.
        source_dir: A local mirror of the upstream files, or ``None``.
        base_url: The upstream directory URL, without a trailing slash.
        timeout_s: Socket timeout of the download.
        name: The file to fetch, a key of :data:`PINNED_SHA256`.

    Returns:
        How the file got there.

    Raises:
        WeightsUnavailable: The download failed (retriable).
        WeightsCorrupt: The copied or downloaded bytes have the wrong sha256.
    """
    target = weights_dir / name
    if target.is_file() and sha256_of(target) == PINNED_SHA256[name]:
        return "present"
    weights_dir.mkdir(parents=True, exist_ok=True)
    local = source_dir / name if source_dir is not None else None
    handle, tmp_name = tempfile.mkstemp(prefix=f".{name}.", dir=weights_dir)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        if local is not None and local.is_file():
            shutil.copyfile(local, tmp)
            how: Literal["copied", "downloaded"] = "copied"
            origin = str(local)
        else:
            origin = f"{base_url}/{name}"
            logger.info("no local copy of %s; downloading %s", name, origin)
            _download(origin, tmp, timeout_s)
            how = "downloaded"
        actual = sha256_of(tmp)
        if actual != PINNED_SHA256[name]:
            msg = f"{origin} has sha256 {actual}, expected {PINNED_SHA256[name]}; not installed"
            raise WeightsCorrupt(msg)
        # mkstemp creates the file private; weights are not secret and other users may read them.
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return how
