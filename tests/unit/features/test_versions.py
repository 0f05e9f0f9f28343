"""The model registry: every model's dimension, retrieval space and version, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config.settings import PROJECT_ROOT, ModelSettings
from features.errors import UnknownModel
from features.musicnn_weights import WEIGHTS_SHA256
from features.versions import MODELS, model_spec, model_version_of, pinned_windows, windows_of


def test_every_model_declares_its_dimension_and_space() -> None:
    described = {name: (spec.dim, spec.retrieval_space) for name, spec in MODELS.items()}
    assert described == {
        "choi2017": (160, "zscore"),
        "choi2017-calibrated": (160, "zscore"),
        "musicnn-msd": (200, "cosine"),
    }


def test_musicnn_version_names_weights_and_patch_count() -> None:
    version = model_version_of(ModelSettings(version="musicnn-msd", max_patches=3))
    assert version == f"musicnn-msd.{WEIGHTS_SHA256[:8]}+sf-soxrhq-16k-3sx3"
    assert model_spec(version).name == "musicnn-msd"
    # Another patch count embeds long tracks differently: another version, never mixed.
    assert model_version_of(ModelSettings(version="musicnn-msd")) != version
    with pytest.raises(UnknownModel):
        model_version_of(ModelSettings(version=version.replace("3sx3", "3sx4")))


def test_unknown_model_names_are_refused() -> None:
    with pytest.raises(UnknownModel, match="musicnn-msd"):
        model_spec("musicnn-mtt")


def test_registry_needs_no_tensorflow() -> None:
    script = (
        "import sys\n"
        "from config.settings import ModelSettings\n"
        "from features.versions import model_spec, model_version_of\n"
        "settings = ModelSettings(version='musicnn-msd')\n"
        "print(model_version_of(settings), model_spec(settings.version).dim)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[1] == "200"


def test_choi_versions_name_their_window_count() -> None:
    assert model_version_of(ModelSettings(version="choi2017")) == "choi2017+sf-soxrhq-12k-29sx3"
    first = model_version_of(ModelSettings(version="choi2017", choi_windows=0))
    assert first == "choi2017+sf-soxrhq-12k-29s"
    spread = model_version_of(ModelSettings(version="choi2017", choi_windows=3))
    assert spread == "choi2017+sf-soxrhq-12k-29sx3"
    calibrated = model_version_of(ModelSettings(version="choi2017-calibrated", choi_windows=1))
    assert calibrated.endswith("+sf-soxrhq-12k-29sx1")


def test_a_pinned_full_choi_version_keeps_its_window_rule() -> None:
    # A deployment that pinned the full version of the earlier default (first 29 s) keeps it
    # after the default became 3 windows; the full version selects the count.
    old = model_version_of(ModelSettings(version="choi2017-calibrated", choi_windows=0))
    assert old.endswith("+sf-soxrhq-12k-29s")
    assert model_version_of(ModelSettings(version=old)) == old
    pinned = pinned_windows(ModelSettings(version=old))
    assert pinned.choi_windows == 0
    spread = model_version_of(ModelSettings(version="choi2017"))
    assert pinned_windows(ModelSettings(version=spread)).choi_windows == 3
    assert windows_of("musicnn-msd") is None and windows_of("choi2017") is None
    # An explicit count is never overridden: a contradicting full version is refused.
    with pytest.raises(UnknownModel, match="29sx3"):
        model_version_of(ModelSettings(version=old, choi_windows=3))
