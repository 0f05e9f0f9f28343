"""Benchmark of the feature extractor: clips per second per stage, beside a NumPy/librosa baseline.

Reads the settings (weights directory, thread counts) and the shared recordings (``--audio-dir``,
default ``../shared/audio/clips`` beside the repository); writes only the report, to stdout.
Stages are timed separately (decode, front end, network) and together, at batch 1 and at the
best batch size, beside the same work done with librosa and the test oracle's NumPy network in
float32, in the same run. It counts the multiply-adds per clip and compares the network's rate
with a float32 matrix product on the same threads, the machine's practical compute limit. Then
every model version (both Choi models, musicnn-msd with 10 and 3 patches) runs end to end on the
same 30-s previews (``bench.extract_models``); ``--models-only`` runs just that part.

Run from the repository root: ``.venv/bin/python bench/extract.py [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import numpy.typing as npt

from bench.extract_models import previews, report
from config.settings import PROJECT_ROOT, load_settings
from features.audio import CLIP_SAMPLES, CLIP_SECONDS, SAMPLE_RATE, decode
from features.choi2017 import POOL_SIZES
from features.extractor import Choi2017Extractor, load_extractor
from features.runtime import configure_threads, keras, tf
from features.weights import CHOI2017_FILE
from tests.oracle.choi2017 import (
    POOLS,
    OracleWeights,
    batchnorm_mode2_single,
    elu,
    max_pool_valid,
    read_weights,
    true_convolution_same,
)

F32 = npt.NDArray[np.float32]
BATCH_SIZES = (1, 4, 8, 16, 32)
#: A stage's name and its clips per second by batch size (``None``: not batched).
Row = tuple[str, dict[int | None, float]]


def rate(
    work: Callable[[], object], clips_per_call: int, seconds: float, repeats: int = 3
) -> float:
    """Clips per second of ``work``: the best of ``repeats`` windows sharing ``seconds``.

    The best window, not the mean, because other processes on the machine only ever slow a
    window down. One warm-up call first traces and allocates.
    """
    work()
    best_rate = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            work()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / repeats:
                break
        best_rate = max(best_rate, calls * clips_per_call / elapsed)
    return best_rate


def sweep(name: str, work_for: Callable[[int], Callable[[], object]], seconds: float) -> Row:
    """A stage's rate at every batch size of ``BATCH_SIZES``."""
    return name, {size: rate(work_for(size), size, seconds) for size in BATCH_SIZES}


def best(row: Row) -> tuple[int | None, float]:
    """The fastest batch size of a row and its rate."""
    size = max(row[1], key=row[1].__getitem__)
    return size, row[1][size]


def multiply_adds() -> dict[str, int]:
    """Multiply-adds per clip, by stage, for the 96 x 1360 log-mel input."""
    frames, bins, mels = 1360, 257, 96
    counts = {
        "STFT as the original's DFT matmul": frames * 512 * 2 * bins,
        "STFT as real FFT (this port, ~2.5 N log2 N)": int(frames * 2.5 * 512 * 9),
        "mel matrix": frames * bins * mels,
    }
    height, width, channels_in, conv = 96, 1360, 1, 0
    for rows, cols in POOL_SIZES:
        conv += height * width * 9 * channels_in * 32
        height, width, channels_in = height // rows, width // cols, 32
    counts["five 3x3 convolutions"] = conv
    counts["tag head"] = 32 * 50
    return counts


def matmul_roof(seconds: float) -> float:
    """GFLOP/s of a 2048^3 float32 matrix product on TensorFlow's configured threads."""
    size = 2048
    a = tf.random.normal([size, size])
    product = tf.function(lambda x: tf.linalg.matmul(x, x))
    return 2 * size**3 * rate(lambda: product(a).numpy(), 1, seconds) / 1e9


def librosa_load(path: Path) -> F32:
    """The baseline decode: librosa's own loader with the same resampler."""
    audio, _ = librosa.load(path, sr=SAMPLE_RATE, duration=CLIP_SECONDS, res_type="soxr_hq")
    return np.asarray(librosa.util.fix_length(audio, size=CLIP_SAMPLES), dtype=np.float32)


def librosa_log_mel(audio: F32) -> F32:
    """The baseline front end: librosa's centred log-mel, 96 x 1360 dB, floored at -80."""
    power = librosa.feature.melspectrogram(
        y=audio, sr=SAMPLE_RATE, n_fft=512, hop_length=256, n_mels=96, fmin=0.0, fmax=6000.0
    )
    return np.asarray(librosa.power_to_db(power, ref=np.max, top_db=80.0), dtype=np.float32)


def numpy_network(mel_db: F32, w: OracleWeights) -> F32:
    """The baseline network: the oracle's NumPy code on float32 arrays."""
    x: Any = mel_db[None]
    averages = []
    for k, pool in enumerate(POOLS):
        x = true_convolution_same(x, w.kernels[k], w.biases[k])
        x = max_pool_valid(elu(batchnorm_mode2_single(x, w.gammas[k], w.betas[k])), pool)
        averages.append(x.mean(axis=(1, 2)))
    return np.concatenate(averages).astype(np.float32)


def _drain(extractor: Choi2017Extractor, files: list[Path]) -> None:
    for _ in extractor.extract(files):
        pass


def stage_rows(extractor: Choi2017Extractor, full: list[Path], audio: F32, s: float) -> list[Row]:
    workers = extractor.decode_workers
    rows: list[Row] = [
        (
            "decode: soundfile + soxr HQ, 1 thread",
            {None: rate(partial(_decode_all, full), len(full), s)},
        )
    ]
    with ThreadPoolExecutor(workers) as pool:
        work = partial(_decode_all, full, pool)
        rows.append((f"decode: {workers} threads", {None: rate(work, len(full), s)}))
    model = extractor.model
    frontend = keras.Model(model.input, model.get_layer("log_mel").output)
    network = keras.Model(model.get_layer("log_mel").output, model.output)
    spec = tf.TensorSpec([None, CLIP_SAMPLES], tf.float32)
    run_frontend = tf.function(lambda x: frontend(x, training=False), input_signature=[spec])
    run_network = tf.function(lambda x: network(x, training=False))

    def batch(size: int) -> F32:
        return np.resize(audio, (size, CLIP_SAMPLES))

    def frontend_work(size: int) -> Callable[[], object]:
        return partial(run_frontend, tf.constant(batch(size)))

    def network_work(size: int) -> Callable[[], object]:
        return partial(run_network, run_frontend(tf.constant(batch(size))))

    def embed_work(size: int) -> Callable[[], object]:
        extractor.batch_size = size
        return partial(extractor.embed, list(batch(size)))

    rows.append(sweep("front end: log-mel", frontend_work, s))
    rows.append(sweep("network: 5 conv blocks + head", network_work, s))
    rows.append(sweep("front end + network (embed)", embed_work, s))
    end_to_end: dict[int | None, float] = {}
    for size in sorted({1, 16, int(best(rows[-1])[0] or 1)}):
        extractor.batch_size = size
        files = [full[i % len(full)] for i in range(max(4 * size, 2 * len(full)))]
        end_to_end[size] = rate(partial(_drain, extractor, files), len(files), s)
    rows.append((f"end to end: files -> vectors, {workers} decode threads", end_to_end))
    return rows


def _decode_all(paths: list[Path], pool: ThreadPoolExecutor | None = None) -> None:
    list(pool.map(decode, paths) if pool else map(decode, paths))


def baseline_rows(weights: OracleWeights, full: list[Path], audio: F32, s: float) -> list[Row]:
    mels = [librosa_log_mel(clip) for clip in audio[:3]]
    decode_rate = rate(lambda: [librosa_load(p) for p in full], len(full), s)
    mel_rate = rate(lambda: [librosa_log_mel(a) for a in audio], len(audio), s)
    network_rate = rate(lambda: [numpy_network(m, weights) for m in mels], len(mels), s)
    total = 1 / (1 / decode_rate + 1 / mel_rate + 1 / network_rate)
    return [
        ("baseline decode: librosa.load(sr=12000, soxr_hq)", {None: decode_rate}),
        ("baseline front end: librosa melspectrogram, power_to_db", {None: mel_rate}),
        ("baseline network: NumPy float32 (the test oracle's code)", {None: network_rate}),
        ("baseline end to end: the three in sequence", {1: total}),
    ]


def print_table(rows: list[Row]) -> None:
    print(f"clips per second{'':42s}" + "".join(f"{'b=' + str(b):>8s}" for b in BATCH_SIZES))
    for name, rates in rows:
        cells = []
        for size in BATCH_SIZES:
            value = rates.get(size, rates.get(None) if size == 1 else None)
            cells.append(f"{value:8.1f}" if value is not None else f"{'':8s}")
        print(f"{name:58s}" + "".join(cells))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Feature extractor benchmark.")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    default_dir = PROJECT_ROOT.parent / "shared" / "audio" / "clips"
    parser.add_argument("--audio-dir", type=Path, default=default_dir, help="mp3/ogg files")
    parser.add_argument(
        "--models-only", action="store_true", help="only every model end to end, no stage sweep"
    )
    parser.add_argument(
        "--musicnn-patches",
        type=int,
        action="append",
        help="musicnn-msd patch bounds to run (repeatable; default 10 and 3)",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    models = [("choi2017", 0), ("choi2017-calibrated", 0)]
    models += [("musicnn-msd", n) for n in args.musicnn_patches or [10, 3]]
    if args.models_only:
        configure_threads(settings.model.threads)
        paths = sorted(p for p in args.audio_dir.iterdir() if p.suffix in {".ogg", ".mp3"})
        full = [p for p in paths if np.abs(decode(p)[-SAMPLE_RATE:]).max() > 0]
        roof = matmul_roof(args.seconds)
        print(f"float32 2048^3 matmul on {settings.model.threads} threads: {roof:.0f} GFLOP/s")
        report(settings, previews(full), rate, roof, args.seconds, models)
        return 0
    extractor = load_extractor(settings.model.model_copy(update={"version": "choi2017-calibrated"}))
    assert isinstance(extractor, Choi2017Extractor)
    paths = sorted(p for p in args.audio_dir.iterdir() if p.suffix in {".ogg", ".mp3"})
    decoded = {p: decode(p) for p in paths}
    # Recordings that fill the 29 s window, as full catalogue tracks do; short ones decode faster.
    full = [p for p in paths if np.abs(decoded[p][-SAMPLE_RATE:]).max() > 0]
    audio = np.stack([decoded[p] for p in full])
    print(
        f"{os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"{settings.model.threads} intra-op threads, {settings.model.decode_workers} decode threads"
    )
    mp3s = sum(p.suffix == ".mp3" for p in full)
    print(f"{len(full)} recordings that fill 29 s ({mp3s} mp3, {len(full) - mp3s} ogg), cycled")
    print(
        "best of 3 windows per figure; other services may share the cores, so figures are noisy\n"
    )

    rows = stage_rows(extractor, full, audio, args.seconds)
    weights_file = settings.path(settings.model.weights_dir) / CHOI2017_FILE
    baseline = baseline_rows(read_weights(weights_file, np.float32), full, audio, args.seconds)
    print_table(rows + baseline)
    print("(b=: clips per network call; unbatched stages are shown under b=1)")

    counts = multiply_adds()
    print("\nmultiply-adds per clip")
    for name, count in counts.items():
        print(f"  {name:46s} {count / 1e6:8.1f} M")
    network_batch, network_rate = best(rows[3])
    flops = 2 * counts["five 3x3 convolutions"]
    achieved = flops * network_rate / 1e9
    roof = matmul_roof(args.seconds)
    print(
        f"\ncompute limit: float32 2048^3 matmul on {settings.model.threads} threads: "
        f"{roof:.0f} GFLOP/s"
    )
    print(
        f"network at batch {network_batch}: {network_rate:.0f} clips/s x {flops / 1e9:.3f} GFLOP"
        f" = {achieved:.0f} GFLOP/s, {100 * achieved / roof:.0f}% of that limit"
    )
    end_batch, end_to_end = best(rows[-1])
    print(
        f"end to end at batch {end_batch}: {end_to_end:.1f} clips/s (target 20; musly about 7, "
        f"bliss about 3 tracks/s), {end_to_end / baseline[-1][1][1]:.1f}x the NumPy/librosa "
        "baseline"
    )
    report(settings, previews(full), rate, roof, args.seconds, models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
