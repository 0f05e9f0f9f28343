"""``spotrec dead-letters list|redrive``: see what the pipeline parked, and send it back.

Reads ``dead-letters.v1`` and the record of what was already sent back (see
:mod:`streams.redrive`); ``redrive`` writes each matching dead letter's original key, value and
headers to the topic and partition it came from, at most once however often it is run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from typing import Any

from config.settings import Settings
from streams.redrive import Filters, RedriveReport, list_dead_letters, redrive


def register(subparsers: Any) -> None:
    """Add the ``dead-letters`` sub-command and its ``list`` and ``redrive`` actions."""
    parser = subparsers.add_parser(
        "dead-letters",
        help="list the messages the pipeline parked, or send them back to their topics",
    )
    actions = parser.add_subparsers(dest="dead_letters_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show the dead letters, oldest first")
    sending = actions.add_parser(
        "redrive",
        help="send the dead letters' original bytes, key and headers back to their topics; "
        "each is sent once, however often this runs",
    )
    for p in (listing, sending):
        p.add_argument("--topic", help="only those read from this topic (e.g. playlists.v1)")
        p.add_argument("--reason", help="only those whose reason contains this text")
    sending.add_argument(
        "--dry-run", action="store_true", help="say what would be sent, and send nothing"
    )
    listing.set_defaults(handler=_list)
    sending.set_defaults(handler=_redrive)


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(topic=args.topic, reason=args.reason)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    parked = asyncio.run(list_dead_letters(settings, _filters(args)))
    shown = 0
    for item in parked:
        letter = item.letter
        if letter is None:
            print(f"{item.ref:>10}  (not a dead letter: {item.problem})")
            continue
        shown += 1
        when = datetime.datetime.fromtimestamp(letter.failed_at, datetime.UTC)
        state = "redriven" if item.redriven else "parked"
        lossy = "" if letter.exact else " (original bytes not kept: not redriven)"
        print(
            f"{item.ref:>10}  {when:%Y-%m-%d %H:%M:%S}  {state:<8}  "
            f"{letter.topic}[{letter.partition}]@{letter.offset}  {letter.agent}  "
            f"{letter.error or '-'}  x{letter.attempts}  {len(letter.value)} B{lossy}  "
            f"{letter.reason}"
        )
    waiting = sum(1 for p in parked if p.letter is not None and not p.redriven)
    print(f"{shown} dead letters, {waiting} not redriven")
    return 0


def _redrive(args: argparse.Namespace, settings: Settings) -> int:
    dry_run: bool = args.dry_run

    def progress(report: RedriveReport) -> None:
        todo = report.matched - report.already - report.inexact
        verb = "would send" if dry_run else "sent"
        print(f"redrive: {verb} {report.sent}/{todo}", flush=True)

    try:
        report = asyncio.run(redrive(settings, _filters(args), dry_run=dry_run, progress=progress))
    except KeyboardInterrupt:
        print(
            "redrive interrupted: the batches committed so far are recorded; "
            "run the same command again to send the rest",
            file=sys.stderr,
        )
        return 130
    verb = "would send" if dry_run else "sent"
    print(
        f"redrive: {verb} {report.sent} of {report.matched} matching dead letters "
        f"({report.already} already sent back, {report.inexact} without their original bytes "
        f"and {report.unreadable} unreadable messages skipped)"
    )
    return 0
