"""The ``spotrec`` command: one sub-command module per concern, registered in :data:`COMMANDS`.

Reads the settings once (``config.settings.load_settings``) and hands them to the chosen
sub-command. Each sub-command module exposes ``register(subparsers)``, which adds its parsers and
sets ``handler`` (a callable taking ``(args, settings)`` and returning an exit status).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from config.settings import Settings, SettingsError, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]

#: Sub-command modules, in the order ``spotrec --help`` lists them.
COMMANDS = (
    "cli.demo",
    "cli.servers",
    "cli.pipeline",
    "cli.reindex",
    "cli.dead_letters",
    "cli.extract",
    "cli.calibrate",
    "cli.weights",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="spotrec", description="Content-based music recommender on a streaming pipeline."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"spotrec: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler: Handler = args.handler
    return handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
