"""``spotrec weights verify`` for musicnn-msd: the pinned wheel and its checkpoint, or why not."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from cli import build_parser
from config.settings import PROJECT_ROOT, Settings
from features.errors import WeightsCorrupt, WeightsMissing
from features.musicnn_pin import PIN_FILE, read_pin, verify_musicnn_weights
from features.musicnn_weights import PINNED_SHA256, WEIGHTS_SHA256, default_checkpoint
from tests.fakes.fixtures import with_group

PINS = PROJECT_ROOT / PIN_FILE


def _copy_checkpoint(target: Path) -> Path:
    target.mkdir()
    for name in PINNED_SHA256:
        shutil.copyfile(default_checkpoint() / name, target / name)
    return target


def _verify() -> argparse.Namespace:
    return build_parser().parse_args(["weights", "verify"])


def test_the_installed_wheel_is_the_pinned_one_and_its_checkpoint_intact() -> None:
    check = verify_musicnn_weights(None, PINS)
    assert check.wheel is not None
    assert check.wheel == read_pin(PINS)
    assert check.wheel.version == "0.1.0"
    assert check.checkpoint == default_checkpoint()
    assert check.weights_sha256 == WEIGHTS_SHA256


def test_an_altered_or_missing_checkpoint_file_is_refused(tmp_path: Path) -> None:
    folder = _copy_checkpoint(tmp_path / "checkpoint")
    assert verify_musicnn_weights(folder, PINS).wheel is None
    data = folder / ".data-00000-of-00001"
    altered = bytearray(data.read_bytes())
    altered[len(altered) // 2] ^= 0x01
    data.write_bytes(bytes(altered))
    with pytest.raises(WeightsCorrupt, match=f"expected {WEIGHTS_SHA256}"):
        verify_musicnn_weights(folder, PINS)
    data.unlink()
    with pytest.raises(WeightsMissing, match="is missing"):
        verify_musicnn_weights(folder, PINS)


def test_a_pin_file_that_pins_nothing_or_is_absent_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "pins.txt"
    empty.write_text("# nothing\nmusicnn==0.1.0\n")  # no hash: not a pin
    with pytest.raises(WeightsCorrupt, match="pins no musicnn wheel"):
        verify_musicnn_weights(None, empty)
    with pytest.raises(WeightsMissing, match="cannot be read"):
        verify_musicnn_weights(None, tmp_path / "absent.txt")


def _distribution(folder: Path, version: str, record: str) -> None:
    """A musicnn distribution's metadata, found before the installed one on ``sys.path``."""
    info = folder / f"musicnn-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: musicnn\nVersion: {version}\n")
    (info / "RECORD").write_text(record)


def test_another_installed_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _distribution(tmp_path, "0.2.0", "")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(WeightsCorrupt, match=r"musicnn 0\.2\.0 is installed, but .* pins 0\.1\.0"):
        verify_musicnn_weights(None, PINS)


def test_an_installed_record_with_other_checkpoint_hashes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pinned version, but its RECORD gives the variables file another hash (urlsafe base64).
    other = "A" * 43
    _distribution(
        tmp_path,
        "0.1.0",
        f"musicnn/MSD_musicnn/.data-00000-of-00001,sha256={other},9465596\n"
        f"musicnn/MSD_musicnn/.index,sha256={other},1\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(WeightsCorrupt, match="not the pinned"):
        verify_musicnn_weights(None, PINS)


def test_weights_verify_reports_both_models(
    settings: Settings,
    weights_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    verify = _verify()
    assert verify.handler(verify, settings) == 0
    out = capsys.readouterr().out
    assert "choi2017: " in out and "sha256 verified" in out
    assert f"musicnn-msd: {default_checkpoint()}" in out
    assert f"names {WEIGHTS_SHA256[:8]}" in out and "wheel 0.1.0" in out
    folder = _copy_checkpoint(tmp_path / "checkpoint")
    (folder / ".index").write_bytes(b"not the index")
    altered = with_group(settings, "model", musicnn_checkpoint=folder)
    assert verify.handler(verify, altered) == 1
    captured = capsys.readouterr()
    assert "choi2017: " in captured.out  # the Choi file is still checked and reported
    assert f"musicnn-msd: WeightsCorrupt: checkpoint file {folder / '.index'}" in captured.err
