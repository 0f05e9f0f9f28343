"""``spotrec weights fetch|verify``: put the model's weight file in place, or check it.

Reads the settings' model group and the local mirror or upstream URL it names; ``fetch`` writes
the weight file into ``weights_dir`` (only once its sha256 matches), ``verify`` writes nothing.
Messages go to stdout, errors to stderr; the exit status is 0 on success, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from config.settings import Settings
from features.errors import WeightsError
from features.weights import CHOI2017_FILE, fetch_weights, verify_weights


def register(subparsers: Any) -> None:
    """Add the ``weights`` sub-command and its ``fetch`` and ``verify`` actions."""
    parser = subparsers.add_parser(
        "weights",
        help="fetch or verify the embedding model's weights",
        description=(
            "fetch: copy the weight file from the local mirror (weights_source) when it exists, "
            "otherwise download it from weights_url; either way check its sha256. "
            "verify: check that the file in weights_dir is present and intact."
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
    """Check the weight file in the configured directory."""
    try:
        path = verify_weights(settings.path(settings.model.weights_dir))
    except WeightsError as exc:
        print(f"spotrec weights verify: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: sha256 verified")
    return 0
