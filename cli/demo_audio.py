"""A small synthetic catalogue for the demo when no recordings are at hand.

Writes 30 s WAV files into a folder: four families of three (sustained chords, percussion
loops, plucked arpeggios, filtered noise), each member a variation of its family, so that the
recommendations have an audible structure. Only used when the shared recordings are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import lfilter

RATE = 22_050
SECONDS = 30
F64 = npt.NDArray[np.float64]


def _time() -> F64:
    return np.arange(RATE * SECONDS, dtype=np.float64) / RATE


def _chord(root: float, rng: np.random.Generator) -> F64:
    t = _time()
    ratios = (1.0, 1.25, 1.5, 2.0)
    tone = sum(
        np.sin(2 * np.pi * root * r * t + rng.uniform(0, 6.28)) / (i + 1)
        for i, r in enumerate(ratios)
    )
    return np.asarray(tone, dtype=np.float64) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.2 * t))


def _drums(bpm: float, rng: np.random.Generator) -> F64:
    t = _time()
    beat = 60.0 / bpm
    phase = np.mod(t, beat)
    kick = np.sin(2 * np.pi * 60 * phase) * np.exp(-phase * 30)
    hat_phase = np.mod(t + beat / 2, beat)
    hat = rng.standard_normal(t.size) * np.exp(-hat_phase * 80) * 0.3
    return np.asarray(kick + hat, dtype=np.float64)


def _arpeggio(root: float, rng: np.random.Generator) -> F64:
    t = _time()
    step = 0.2
    notes = root * np.array([1.0, 1.2, 1.5, 1.8, 2.0])
    index = (t // step).astype(int) % notes.size
    phase = np.mod(t, step)
    decay = np.exp(-phase * 12)
    out = np.sin(2 * np.pi * notes[index] * t) * decay
    return np.asarray(out + 0.3 * np.sin(4 * np.pi * notes[index] * t) * decay, dtype=np.float64)


def _noise(cutoff: float, rng: np.random.Generator) -> F64:
    white = rng.standard_normal(RATE * SECONDS)
    # A one-pole low-pass: lower cutoffs sound like rain or wind, higher like surf.
    alpha = np.exp(-2 * np.pi * cutoff / RATE)
    return np.asarray(lfilter([1 - alpha], [1, -alpha], white), dtype=np.float64)


FAMILIES = {
    "chords": (_chord, (196.0, 220.0, 247.0)),
    "drums": (_drums, (90.0, 110.0, 128.0)),
    "arpeggio": (_arpeggio, (330.0, 392.0, 440.0)),
    "noise": (_noise, (300.0, 600.0, 1200.0)),
}


def write_demo_catalogue(folder: Path) -> list[Path]:
    """Write the twelve clips into ``folder`` (kept if already there); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2017)
    paths = []
    for family, (make, params) in FAMILIES.items():
        for number, param in enumerate(params, start=1):
            path = folder / f"{family} {number}.wav"
            signal = make(param, rng)
            if not path.exists():
                peak = float(np.max(np.abs(signal))) or 1.0
                sf.write(path, (0.8 * signal / peak).astype(np.float32), RATE, subtype="PCM_16")
            paths.append(path)
    return paths
