"""``spotrec extract`` and ``spotrec weights``: JSON lines, error lines, exit statuses."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from cli import build_parser
from cli import extract as extract_cli
from config.settings import Settings
from features.extractor import Choi2017Extractor
from features.weights import CHOI2017_FILE
from tests.fakes.fixtures import with_group

from .conftest import Clip

F32 = npt.NDArray[np.float32]


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_each_file_gives_one_json_line_and_a_bad_one_an_error(
    clip_by_name: dict[str, Clip],
    decoded: dict[str, F32],
    extractor: Choi2017Extractor,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 4096)
    paths = [clip_by_name["brahms"].path, bad, clip_by_name["libri1"].path]
    out = io.StringIO()
    status = extract_cli.write_lines(extractor, paths, out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1
    assert [line["path"] for line in lines] == [str(p) for p in paths]
    good, error, last = lines
    assert set(good) == {"path", "model", "dim", "vector", "tags"}
    assert good["model"] == "choi2017+sf-soxrhq-12k-29s"
    assert good["dim"] == 160
    assert len(good["vector"]) == 160
    expected = extractor.embed([decoded["brahms"]])[0]
    # The file ran in a batch of two; the reference alone: equal up to float32 rounding.
    np.testing.assert_allclose(good["vector"], expected.vector, rtol=0, atol=1e-5)
    assert [name for name, _ in good["tags"]] == [name for name, _ in expected.top_tags(5)]
    assert error["error_type"] == "CorruptAudio"
    assert "bad.mp3" in error["error"]
    assert "vector" not in error
    assert last["dim"] == 160


def test_all_readable_files_exit_zero(
    clip_by_name: dict[str, Clip], extractor: Choi2017Extractor
) -> None:
    out = io.StringIO()
    status = extract_cli.write_lines(extractor, [clip_by_name["robin"].path], out, top=3)
    assert status == 0
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert len(line["tags"]) == 3


def test_extract_command_loads_the_configured_model(
    settings: Settings,
    clip_by_name: dict[str, Clip],
    weights_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse("extract", str(clip_by_name["trumpet"].path))
    assert args.handler(args, settings) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["dim"] == 160


def test_extract_command_without_weights_fails_clearly(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("extract", "whatever.ogg")
    assert args.handler(args, with_group(settings, "model", weights_dir=tmp_path)) == 2
    assert "spotrec weights fetch" in capsys.readouterr().err


def test_weights_fetch_then_verify(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = with_group(settings, "model", weights_dir=tmp_path)
    verify = parse("weights", "verify")
    assert verify.handler(verify, local) == 1
    assert "missing" in capsys.readouterr().err
    fetch = parse("weights", "fetch")
    assert fetch.handler(fetch, local) == 0
    assert "copied" in capsys.readouterr().out
    assert (tmp_path / CHOI2017_FILE).is_file()
    assert verify.handler(verify, local) == 0
    assert "sha256 verified" in capsys.readouterr().out
