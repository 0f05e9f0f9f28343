"""The generated demo catalogue: twelve distinct, decodable 30 s clips, stable across runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import soundfile as sf

from cli.demo_audio import SECONDS, write_demo_catalogue


def test_twelve_distinct_clips_that_decode(tmp_path: Path) -> None:
    paths = write_demo_catalogue(tmp_path)
    assert len(paths) == 12
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == 12
    for path in paths:
        info = sf.info(path)
        assert abs(info.duration - SECONDS) < 0.01
        data, _ = sf.read(path)
        assert 0.5 < abs(data).max() <= 0.81  # normalised to 0.8 peak, not silent


def test_writing_again_keeps_the_same_files(tmp_path: Path) -> None:
    first = {p: p.read_bytes() for p in write_demo_catalogue(tmp_path)}
    second = write_demo_catalogue(tmp_path)
    assert {p: p.read_bytes() for p in second} == first
