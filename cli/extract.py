"""``spotrec extract [--model NAME] FILE...``: print each file's vector and top tags as JSON lines.

Reads the settings' model group (``--model`` overrides its version), the weight file, the
calibration file of ``choi2017-calibrated`` and the named audio files; writes JSON lines to
stdout and nothing else. A file that cannot be read gets a line with ``"error"`` in its place;
the exit status is 1 if any file failed, after every line was printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from config.settings import Settings

if TYPE_CHECKING:
    from features.extractor import Extractor


def register(subparsers: Any) -> None:
    """Add the ``extract`` sub-command to ``spotrec``."""
    parser = subparsers.add_parser(
        "extract",
        help="print feature vectors of audio files as JSON lines",
        description=(
            "Decode each FILE (mp3, ogg, wav, flac), run the embedding model and print one JSON "
            'object per file: {"path", "model", "dim", "vector", "tags"}, or {"path", "model", '
            '"error", "error_type"} for a file that cannot be read.'
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files")
    parser.add_argument("--top", type=int, default=5, help="tags per line (default: 5)")
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help=(
            "model name (choi2017-calibrated, choi2017) or full version "
            "(default: SPOTREC_MODEL_VERSION)"
        ),
    )
    parser.set_defaults(handler=extract_command)


def extract_command(args: argparse.Namespace, settings: Settings) -> int:
    """Load the configured (or ``--model``) extractor and print one line per file."""
    # Imported here so that `spotrec --help` and the other sub-commands skip TensorFlow.
    from features.errors import FeatureError
    from features.extractor import load_extractor

    try:
        model = settings.model
        if args.model is not None:
            model = model.model_copy(update={"version": args.model})
        extractor = load_extractor(model)
    except FeatureError as exc:
        print(f"spotrec extract: {exc}", file=sys.stderr)
        return 2
    return write_lines(extractor, args.files, sys.stdout, top=args.top)


def write_lines(extractor: Extractor, paths: Sequence[Path], out: TextIO, *, top: int = 5) -> int:
    """Extract ``paths`` and write one JSON line each to ``out``, in order.

    Args:
        extractor: The loaded extractor.
        paths: Audio files.
        out: Where the lines go; flushed after each line.
        top: Tags per line.

    Returns:
        0 if every file gave a vector, else 1.
    """
    from features.extractor import Embedding

    failed = 0
    for path, outcome in zip(paths, extractor.extract(paths), strict=True):
        record: dict[str, Any] = {"path": str(path), "model": extractor.version}
        if isinstance(outcome, Embedding):
            record["model"] = outcome.version
            record["dim"] = int(outcome.vector.shape[0])
            record["vector"] = outcome.vector.tolist()
            record["tags"] = [[name, p] for name, p in outcome.top_tags(top)]
        else:
            failed += 1
            record["error"] = str(outcome)
            record["error_type"] = type(outcome).__name__
        out.write(json.dumps(record) + "\n")
        out.flush()
    return 1 if failed else 0
