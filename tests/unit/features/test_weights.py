"""The weight file: pinned sha256, fetching by copy or download, clear errors, loading by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from config.settings import Settings
from features.errors import WeightsCorrupt, WeightsMissing, WeightsUnavailable
from features.extractor import load_extractor
from features.weights import (
    CHOI2017_FILE,
    PINNED_SHA256,
    Choi2017Weights,
    fetch_weights,
    load_choi2017_weights,
    sha256_of,
    verify_weights,
)

from .conftest import SHARED

MIRROR = SHARED / "models" / "choi2017" / "weights_transfer"
UNREACHABLE = "http://127.0.0.1:9/compact_cnn"  # the discard port: connection refused at once


def test_the_configured_file_has_the_pinned_sha256(weights_path: Path) -> None:
    assert sha256_of(weights_path) == PINNED_SHA256[CHOI2017_FILE]
    assert verify_weights(weights_path.parent) == weights_path


def test_fetch_copies_from_the_mirror_then_keeps_the_file(tmp_path: Path) -> None:
    target = tmp_path / "weights"
    assert fetch_weights(target, source_dir=MIRROR, base_url=UNREACHABLE) == "copied"
    assert sha256_of(target / CHOI2017_FILE) == PINNED_SHA256[CHOI2017_FILE]
    assert fetch_weights(target, source_dir=MIRROR, base_url=UNREACHABLE) == "present"
    assert sorted(p.name for p in target.iterdir()) == [CHOI2017_FILE]


def test_fetch_downloads_when_there_is_no_mirror(tmp_path: Path) -> None:
    # A file: URL exercises the download path without the network.
    how = fetch_weights(tmp_path, source_dir=tmp_path / "absent", base_url=MIRROR.as_uri())
    assert how == "downloaded"
    verify_weights(tmp_path)


def test_fetch_refuses_altered_bytes_and_leaves_nothing(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    altered = bytearray((MIRROR / CHOI2017_FILE).read_bytes())
    altered[5000] ^= 0xFF
    (mirror / CHOI2017_FILE).write_bytes(bytes(altered))
    target = tmp_path / "weights"
    with pytest.raises(WeightsCorrupt, match="sha256"):
        fetch_weights(target, source_dir=mirror, base_url=UNREACHABLE)
    assert list(target.iterdir()) == []


def test_fetch_reports_an_unreachable_upstream_as_retriable(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailable) as caught:
        fetch_weights(tmp_path, source_dir=None, base_url=UNREACHABLE, timeout_s=5)
    assert caught.value.retriable is True
    assert list(tmp_path.iterdir()) == []


def test_missing_or_altered_weights_stop_the_extractor_at_start_up(
    settings: Settings, tmp_path: Path
) -> None:
    model = settings.model.model_copy(update={"weights_dir": tmp_path})
    with pytest.raises(WeightsMissing, match="spotrec weights fetch"):
        load_extractor(model)
    shutil.copyfile(MIRROR / CHOI2017_FILE, tmp_path / CHOI2017_FILE)
    with (tmp_path / CHOI2017_FILE).open("r+b") as stream:
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 1]))
    with pytest.raises(WeightsCorrupt) as caught:
        load_extractor(model)
    assert caught.value.retriable is False
    with pytest.raises(WeightsCorrupt, match="delete it and run `spotrec weights fetch`"):
        load_choi2017_weights(tmp_path)


def test_arrays_are_read_by_dataset_name(weights_path: Path, weights: Choi2017Weights) -> None:
    with h5py.File(weights_path, "r") as file:
        group = file["ConvBNEluDr"]
        # Keras-1 lists the running statistics last; reading by position would misplace them.
        names = [n.decode() for n in group.attrs["weight_names"]]
        assert names.index("batchnormalization_1_running_mean") > names.index("convolution2d_5_W")
        for k in range(5):
            np.testing.assert_array_equal(
                weights.conv_kernels[k], group[f"convolution2d_{k + 1}_W"][()]
            )
            np.testing.assert_array_equal(
                weights.norm_gamma[k], group[f"batchnormalization_{k + 1}_gamma"][()]
            )
        np.testing.assert_array_equal(weights.dense_kernel, file["dense_1/dense_1_W"][()])
        np.testing.assert_array_equal(weights.mel_basis, file["melgram/param_2"][()])
    assert weights.conv_kernels[0].shape == (32, 1, 3, 3)
    assert weights.dft_real.shape == (512, 257)
