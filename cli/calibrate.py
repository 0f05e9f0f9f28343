"""``spotrec calibrate FOLDER``: estimate the calibrated model's frozen statistics from audio.

Reads the settings' model group, the weight file and the clips of FOLDER (its music rows when it
has a ``labels.csv`` with a ``kind`` column, else every audio file, or the ``--files`` given);
writes the statistics file (``--out``, default the configured ``calibration_file``) and prints
the new model version to stdout. Errors go to stderr; the exit status is 0 on success.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings


def register(subparsers: Any) -> None:
    """Add the ``calibrate`` sub-command to ``spotrec``."""
    parser = subparsers.add_parser(
        "calibrate",
        help="estimate the frozen normalisation statistics of choi2017-calibrated",
        description=(
            "Run the Choi 2017 network over the clips of FOLDER and write the per-channel mean "
            "and variance of each block's conv output, estimated block after block with the "
            "earlier blocks frozen, with the clips' names and sha256 and the weight file's "
            "sha256. The file's content hash becomes part of the model version, so vectors made "
            "with the new statistics never mix with older ones."
        ),
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="folder of audio files")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="statistics file to write (default: SPOTREC_MODEL_CALIBRATION_FILE)",
    )
    parser.add_argument(
        "--files",
        nargs="+",
        default=(),
        metavar="FILE",
        help="clips to use, relative to FOLDER (default: the music of labels.csv, else all audio)",
    )
    parser.set_defaults(handler=calibrate_command)


def calibrate_command(args: argparse.Namespace, settings: Settings) -> int:
    """Estimate the statistics, write the file and print the model version it defines."""
    # Imported here so that `spotrec --help` and the other sub-commands skip TensorFlow.
    from features.calibration.estimate import calibration_files, corpus, estimate_statistics
    from features.calibration.stats import make_calibration, write_calibration
    from features.errors import FeatureError
    from features.runtime import configure_threads
    from features.versions import DECODE_TAG, calibrated_version, pinned_windows
    from features.weights import CHOI2017_FILE, PINNED_SHA256, load_choi2017_weights

    model = settings.model
    out = settings.path(args.out if args.out is not None else model.calibration_file)
    try:
        files = calibration_files(args.folder, args.files)
        configure_threads(model.threads)
        weights = load_choi2017_weights(settings.path(model.weights_dir))
        clips, records = corpus(args.folder, files)
        statistics = estimate_statistics(weights, clips)
    except (FeatureError, FileNotFoundError) as exc:
        print(f"spotrec calibrate: {exc}", file=sys.stderr)
        return 1
    calibration = make_calibration(
        statistics,
        records,
        weights_file=CHOI2017_FILE,
        weights_sha256=PINNED_SHA256[CHOI2017_FILE],
        decode=DECODE_TAG,
    )
    write_calibration(out, calibration)
    # The version the configured deployment computes with this file (its window rule too).
    version = calibrated_version(
        calibration.content_sha256, pinned_windows(settings.model).choi_windows
    )
    print(f"{out}: {len(records)} clips, model version {version}")
    return 0
