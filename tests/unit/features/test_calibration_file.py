"""The calibration file and its commands: versions, tampering, calibrate, extract --model."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli import build_parser
from config.settings import Settings
from features.calibration.estimate import calibration_files
from features.calibration.stats import (
    Calibration,
    make_calibration,
    read_calibration,
    write_calibration,
)
from features.errors import CalibrationCorrupt, CalibrationMissing, UnknownModel
from features.extractor import Choi2017Extractor, load_extractor
from features.versions import calibrated_version, model_version_of
from tests.fakes.fixtures import with_group

from .conftest import Clip


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def rehashed(
    calibration: Calibration, *, shift: float = 0.0, weights_sha256: str = ""
) -> Calibration:
    """The file with block 1's first mean moved and/or other weights, rehashed as on writing."""
    means = (calibration.means[0] + shift * np.eye(32)[0], *calibration.means[1:])
    return make_calibration(
        list(zip(means, calibration.variances, strict=True)),
        calibration.clips,
        weights_file=calibration.weights_file,
        weights_sha256=weights_sha256 or calibration.weights_sha256,
        decode=calibration.decode,
    )


def test_the_file_round_trips_and_any_change_is_a_new_version(
    calibration: Calibration, settings: Settings, tmp_path: Path
) -> None:
    same = tmp_path / "same.json"
    write_calibration(same, calibration)
    again = read_calibration(same)
    assert again.content_sha256 == calibration.content_sha256
    assert all(np.array_equal(a, b) for a, b in zip(again.means, calibration.means, strict=True))
    assert rehashed(calibration).content_sha256 == calibration.content_sha256
    other = tmp_path / "other.json"
    write_calibration(other, rehashed(calibration, shift=1.0))
    version = model_version_of(with_group(settings, "model", calibration_file=other).model)
    windows = settings.model.choi_windows
    assert version == calibrated_version(read_calibration(other).content_sha256, windows)
    assert version != model_version_of(with_group(settings, "model", calibration_file=same).model)
    # A full version pins the file: the configured file with another hash is refused.
    pinned = with_group(settings, "model", calibration_file=same).model.model_copy(
        update={"version": version}
    )
    with pytest.raises(UnknownModel, match="choi2017-calibrated"):
        model_version_of(pinned)


def test_an_edited_missing_or_foreign_file_is_refused(
    calibration: Calibration, settings: Settings, tmp_path: Path, weights_path: Path
) -> None:
    edited = tmp_path / "edited.json"
    write_calibration(edited, calibration)
    document = json.loads(edited.read_text())
    document["blocks"][2]["variance"][5] *= 2  # changed by hand, hash not updated
    edited.write_text(json.dumps(document))
    with pytest.raises(CalibrationCorrupt, match="content hash"):
        read_calibration(edited)
    with pytest.raises(CalibrationMissing, match="spotrec calibrate"):
        model_version_of(
            with_group(settings, "model", calibration_file=tmp_path / "absent.json").model
        )
    foreign = tmp_path / "foreign.json"
    write_calibration(foreign, rehashed(calibration, weights_sha256="0" * 64))
    model = with_group(settings, "model", calibration_file=foreign).model
    with pytest.raises(CalibrationCorrupt, match="estimated for weights"):
        load_extractor(model.model_copy(update={"version": "choi2017-calibrated"}))


def test_calibration_uses_the_music_of_labels_csv_or_every_audio_file(
    audio_dir: Path, clip_by_name: dict[str, Clip], tmp_path: Path
) -> None:
    chosen = calibration_files(audio_dir)
    assert len(chosen) == 11
    assert all(clip_by_name[p.stem].kind == "music" for p in chosen)
    for name in ("robin", "trumpet"):
        shutil.copy(clip_by_name[name].path, tmp_path / f"{name}.ogg")
    assert [p.name for p in calibration_files(tmp_path)] == ["robin.ogg", "trumpet.ogg"]
    assert calibration_files(tmp_path, ["trumpet.ogg"]) == [tmp_path / "trumpet.ogg"]
    with pytest.raises(FileNotFoundError, match="missing.ogg"):
        calibration_files(tmp_path, ["missing.ogg"])


def test_calibrate_command_writes_a_file_with_its_provenance(
    audio_dir: Path,
    settings: Settings,
    weights_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "two.json"
    args = parse(
        "calibrate",
        str(audio_dir),
        "--out",
        str(out),
        "--files",
        "clips/brahms.ogg",
        "clips/trumpet.ogg",
    )
    assert args.handler(args, settings) == 0
    written = read_calibration(out)
    assert calibrated_version(written.content_sha256) in capsys.readouterr().out
    with (audio_dir / "labels.csv").open(newline="") as stream:
        sha = {row["file"]: row["sha256"] for row in csv.DictReader(stream)}
    assert [(c.file, c.sha256) for c in written.clips] == [
        ("clips/brahms.ogg", sha["clips/brahms.ogg"]),
        ("clips/trumpet.ogg", sha["clips/trumpet.ogg"]),
    ]
    assert str(tmp_path) not in out.read_text()  # provenance holds no machine paths
    bad = parse("calibrate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json"))
    assert bad.handler(bad, settings) == 1
    assert "calibration clips not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["choi2017", "choi2017-calibrated"])
def test_extract_model_option_selects_the_model(
    name: str,
    settings: Settings,
    clip_by_name: dict[str, Clip],
    extractor: Choi2017Extractor,
    calibrated: Choi2017Extractor,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse("extract", "--model", name, str(clip_by_name["trumpet"].path))
    # The fixtures analyse the first 29 s: the same window rule, so the same versions.
    assert args.handler(args, with_group(settings, "model", choi_windows=0)) == 0
    (line,) = capsys.readouterr().out.splitlines()
    expected = extractor if name == "choi2017" else calibrated
    assert json.loads(line)["model"] == expected.version


def test_extract_refuses_an_unknown_model(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("extract", "--model", "musicnn", "whatever.ogg")
    assert args.handler(args, settings) == 2
    assert "musicnn" in capsys.readouterr().err
