"""``spotrec weights fetch|verify``: put the Choi weight file in place, or check every model's.

Reads the settings' model group and the local mirror or upstream URL it names; ``fetch`` writes
the Choi weight file into ``weights_dir`` (only once its sha256 matches). ``verify`` writes
nothing: it checks the Choi file and the musicnn-msd weights (the wheel pinned in
``config/musicnn-weights.txt`` and its checkpoint, whose hash the model version names), each
reported on its own line. Messages go to stdout, errors to stderr; the exit status is 0 when
everything checked is intact, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from config.settings import Settings
from features.errors import WeightsError
from features.musicnn_pin import PIN_FILE, verify_musicnn_weights
from features.versions import MUSICNN, model_version_of
from features.weights import CHOI2017_FILE, fetch_weights, verify_weights


def register(subparsers: Any) -> None:
    """Add the ``weights`` sub-command and its ``fetch`` and ``verify`` actions."""
    parser = subparsers.add_parser(
        "weights",
        help="fetch or verify the embedding model's weights",
        description=(
            "fetch: copy the weight file from the local mirror (weights_source) when it exists, "
            "otherwise download it from weights_url; either way check its sha256. "
            "verify: check that the Choi file in weights_dir and the musicnn-msd weights (the "
            "wheel pinned in config/musicnn-weights.txt and its checkpoint) are present and "
            "intact."
        ),
    )
    actions = parser.add_subparsers(dest="weights_action", required=True, metavar="ACTION")
    fetch = actions.add_parser("fetch", help="copy or download the weights, then verify them")
    fetch.set_defaults(handler=fetch_command)
    verify = actions.add_parser("verify", help="check the weights' sha256")
    verify.set_defaults(handler=verify_command)


def fetch_command(args: argparse.Namespace, settings: Settings) -> int:
    """Copy or download the weight file into the configured directory."""
    model = settings.model
    weights_dir = settings.path(model.weights_dir)
    try:
        how = fetch_weights(
            weights_dir,
            source_dir=settings.path(model.weights_source),
            base_url=model.weights_url,
            timeout_s=model.download_timeout_s,
        )
    except WeightsError as exc:
        print(f"spotrec weights fetch: {exc}", file=sys.stderr)
        return 1
    print(f"{weights_dir / CHOI2017_FILE}: {how}, sha256 verified")
    return 0


def verify_command(args: argparse.Namespace, settings: Settings) -> int:
    """Check the Choi weight file and the musicnn-msd weights; report each."""
    failed = False
    try:
        path = verify_weights(settings.path(settings.model.weights_dir))
        print(f"choi2017: {path}: sha256 verified")
    except WeightsError as exc:
        print(f"spotrec weights verify: choi2017: {type(exc).__name__}: {exc}", file=sys.stderr)
        failed = True
    model = settings.model
    configured = model.musicnn_checkpoint
    try:
        check = verify_musicnn_weights(
            None if configured is None else settings.path(configured), settings.path(PIN_FILE)
        )
    except WeightsError as exc:
        print(f"spotrec weights verify: {MUSICNN}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    version = model_version_of(model.model_copy(update={"version": MUSICNN}))
    source = (
        f"wheel {check.wheel.version} as pinned in {PIN_FILE}"
        if check.wheel is not None
        else "SPOTREC_MODEL_MUSICNN_CHECKPOINT (no wheel used)"
    )
    print(
        f"{MUSICNN}: {check.checkpoint}: sha256 verified ({source}); the version {version} "
        f"names {check.weights_sha256[:8]}"
    )
    return 1 if failed else 0
