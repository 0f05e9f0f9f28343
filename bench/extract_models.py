"""Every model version end to end on the same 30-s previews, in one run: clips per second.

Reads the recordings it is given and the settings' weights; writes only the report, to stdout
(``bench/extract.py`` calls :func:`report`). Each model decodes and embeds the same previews
through its extractor's ``extract`` (decode threads overlapping the network), so the figures
compare like with like on whatever else the machine is doing. For musicnn-msd it also times the
network alone on batches of patches and compares its arithmetic rate with the float32 matrix
product of the same run, the machine's practical compute limit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from config.settings import Settings
from features.audio import AudioSource
from features.extractor import Extractor, load_extractor
from features.musicnn_extractor import MusicnnExtractor

#: A preview's length: what Deezer serves and what the speed target is stated for.
PREVIEW_SECONDS = 30


def musicnn_multiply_adds() -> dict[str, int]:
    """Multiply-adds of MSD_musicnn per 187 x 96 patch, by layer group."""
    frames, mels = 187, 96
    return {
        "timbral 7x38 conv, 204 filters": frames * (mels - 38 + 1) * 7 * 38 * 204,
        "timbral 7x67 conv, 204 filters": frames * (mels - 67 + 1) * 7 * 67 * 204,
        "temporal 128/64/32x1 convs, 3 x 51": frames * mels * (128 + 64 + 32) * 51,
        "mid end: three 7-tap convs": frames * 7 * (561 + 64 + 64) * 64,
        "back end: dense 1506-200-50": 1506 * 200 + 200 * 50,
    }


def previews(paths: Sequence[Path]) -> list[bytes]:
    """The first 30 s of each recording as encoded bytes, as the pipeline reads them from S3.

    A file of at most 30 s is used as it is; a longer one is cut and stored as Ogg Vorbis.
    """
    out = []
    for path in paths:
        with sf.SoundFile(path) as stream:
            rate = int(stream.samplerate)
            if stream.frames <= PREVIEW_SECONDS * rate * 1.01:
                out.append(path.read_bytes())
                continue
            samples = stream.read(PREVIEW_SECONDS * rate, dtype="float32", always_2d=True)
        buffer = io.BytesIO()
        sf.write(buffer, samples, rate, format="OGG", subtype="VORBIS")
        out.append(buffer.getvalue())
    return out


def _drain(extractor: Extractor, sources: Sequence[AudioSource]) -> None:
    for _ in extractor.extract(sources):
        pass


def report(
    settings: Settings,
    sources: Sequence[bytes],
    rate: Callable[..., float],
    roof_gflops: float,
    seconds: float,
    models: Sequence[tuple[str, int]],
) -> None:
    """Print clips per second end to end for each ``(model name, max patches)``.

    Args:
        settings: The settings; each model is loaded with its name and patch bound put in.
        sources: Encoded previews.
        rate: ``bench.extract.rate``: clips per second of a callable, best of windows.
        roof_gflops: The float32 matrix product's GFLOP/s measured in this run.
        seconds: Time per measurement.
        models: Model names with the patch bound for musicnn-msd (ignored by the others).
    """
    print(
        f"\nend to end on {len(sources)} 30-s previews (encoded bytes), every model in this run; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start"
    )
    results: list[tuple[str, float]] = []
    musicnn: MusicnnExtractor | None = None
    for name, patches in models:
        model = settings.model.model_copy(update={"version": name, "max_patches": patches})
        extractor = load_extractor(model)
        # One timed window after the warm-up: a musicnn call on the previews takes seconds.
        work = partial(_drain, extractor, list(sources))
        clips_per_s = rate(work, len(sources), seconds, repeats=1)
        results.append((extractor.version, clips_per_s))
        print(f"  {extractor.version:52s} {clips_per_s:6.2f} clips/s", flush=True)
        if isinstance(extractor, MusicnnExtractor) and musicnn is None:
            musicnn = extractor
    if musicnn is None:
        return
    counts = musicnn_multiply_adds()
    per_patch = sum(counts.values())
    print("\nMSD_musicnn multiply-adds per 3-s patch (a 30-s preview holds 10)")
    for layer, count in counts.items():
        print(f"  {layer:46s} {count / 1e6:8.1f} M")
    batch = np.concatenate([musicnn.decode(source) for source in sources[:2]])[:10]
    patches_per_s = rate(partial(musicnn.run_patches, batch), batch.shape[0], seconds, repeats=1)
    achieved = 2 * per_patch * patches_per_s / 1e9
    print(
        f"network alone, 10 patches per call: {patches_per_s:.1f} patches/s x "
        f"{2 * per_patch / 1e9:.2f} GFLOP = {achieved:.1f} GFLOP/s, "
        f"{100 * achieved / roof_gflops:.0f}% of the {roof_gflops:.0f} GFLOP/s matmul limit"
    )
    choi = [value for version, value in results if version.startswith("choi2017")]
    for version, value in results:
        if version.startswith("musicnn") and choi:
            print(
                f"  {version}: {value:.2f} clips/s = {value / max(choi):.2f}x the faster Choi "
                f"model in this run (target 6 clips/s for 30-s previews)"
            )
