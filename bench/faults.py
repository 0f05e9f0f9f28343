"""What each fault costs the pipeline: tracks lost, duplicated or dead-lettered, and time lost.

Reads the settings; starts Kafka, Cassandra and SeaweedFS of its own on free ports under a
temporary folder (the servers ``spotrec up`` runs are not touched) and runs the scenarios of
:mod:`tests.faults.harness` one after another, each ingesting 2 x N generated clips as
``local:`` playlists with a real ``spotrec worker`` in a deployment of its own:

1. no fault: the baseline, timed from the playlists being sent to every track indexed;
2. Kafka, Cassandra and SeaweedFS each killed with SIGKILL mid-ingest and started again
   ``--outage`` seconds later;
3. the worker killed with SIGKILL right after each per-track step in turn, started again each
   time (``--steps``);
4. a query node's object store taken away while a new snapshot is announced, then restored.

Prints for each fault: tracks expected, indexed, duplicated and dead-lettered; seconds from the
fault's end (the server answering again, the last worker start, the store reachable again) to
the last track indexed, beside the baseline's ingest time; and worker restarts. Writes nothing
outside the temporary folder, which it removes. Run from the repository root:
``.venv/bin/python -m bench.faults [--clips 50] [--outage 30] [--max-backoff S]
[--steps all|track]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from config.settings import load_settings
from tests.faults.harness import (
    ALL_CRASH_STEPS,
    CLIPS_PER_FOLDER,
    CRASH_STEPS,
    OUTAGE_S,
    Clips,
    Outcome,
    no_fault,
    query_node_outage,
    server_outage,
    worker_crashes,
    write_fault_clips,
)
from tests.faults.servers import SERVER_NAMES, DedicatedServers, dedicated_servers

Scenario = Callable[[DedicatedServers, Clips, Path], Awaitable[Outcome]]


def say(text: str) -> None:
    """A progress line, printed at once."""
    print(text, flush=True)


def _scenarios(args: argparse.Namespace) -> list[tuple[str, Scenario]]:
    steps = ALL_CRASH_STEPS if args.steps == "all" else CRASH_STEPS

    def outage(name: str) -> Scenario:
        return lambda s, c, r: server_outage(s, c, r, name, args.outage)

    return [
        ("baseline", no_fault),
        *[(f"{name} outage", outage(name)) for name in SERVER_NAMES],
        ("worker crashes", lambda s, c, r: worker_crashes(s, c, r, steps)),
        ("query node's store (node)", query_node_outage),
    ]


def _table(outcomes: list[Outcome], baseline: float | None) -> str:
    head = (
        f"{'fault':<52} {'expected':>8} {'indexed':>7} {'dup.':>5} {'dead':>5} "
        f"{'to last indexed':>15} {'/ baseline':>10} {'restarts':>8}"
    )
    rows = [head, "-" * len(head)]
    for o in outcomes:
        seconds = "never" if o.recovery_s is None else f"{o.recovery_s:.1f} s"
        ratio = (
            f"{o.recovery_s / baseline:.2f}"
            if o.recovery_s is not None and baseline and o is not outcomes[0]
            else ""
        )
        rows.append(
            f"{o.fault[:52]:<52} {o.expected:>8} {o.indexed:>7} {o.duplicated:>5} "
            f"{o.dead_letters:>5} {seconds:>15} {ratio:>10} {o.worker_restarts:>8}"
        )
    return "\n".join(rows)


async def run(args: argparse.Namespace) -> int:
    """Run every scenario; print each outcome as it ends and the table at the end."""
    base = load_settings()
    outcomes: list[Outcome] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="spotrec-faults-") as tmp:
        root = Path(tmp)
        say(f"writing {2 * args.clips} clips and starting dedicated servers")
        clips_task = asyncio.create_task(
            asyncio.to_thread(write_fault_clips, root / "clips", args.clips)
        )
        try:
            env = {"SPOTREC_RETRY_MAX_BACKOFF_S": str(args.max_backoff)} if args.max_backoff else {}
            async with dedicated_servers(base, root / "run", env) as servers:
                clips = await clips_task
                for name, scenario in _scenarios(args):
                    if args.only and not any(word in name for word in args.only):
                        continue
                    say(f"\n== {name}")
                    try:
                        outcome = await scenario(servers, clips, root)
                    except Exception:  # noqa: BLE001  # reported; the other scenarios still run
                        traceback.print_exc()
                        failed.append(name)
                        continue
                    outcomes.append(outcome)
                    say(outcome.summary())
        finally:
            await asyncio.gather(clips_task, return_exceptions=True)
    baseline = outcomes[0].recovery_s if outcomes and outcomes[0].fault.startswith("none") else None
    say(
        f"\n{2 * args.clips} tracks per scenario; 'to last indexed': seconds from the fault's "
        "end (server answering again, last worker start, store reachable again) to a snapshot "
        "holding every track; the baseline's figure is its whole ingest"
    )
    say(_table(outcomes, baseline))
    if failed:
        say(f"\nfailed: {', '.join(failed)}")
    return 1 if failed or not all(o.complete for o in outcomes) else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips", type=int, default=CLIPS_PER_FOLDER, help="clips in each of the two folders"
    )
    parser.add_argument(
        "--outage", type=float, default=OUTAGE_S, help="seconds a killed server stays down"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="run only the scenarios whose name contains one of these words (e.g. kafka node)",
    )
    parser.add_argument(
        "--max-backoff",
        type=float,
        default=None,
        help="cap of the workers' in-place retry back-off (default: the configured one)",
    )
    parser.add_argument(
        "--steps",
        choices=("all", "track"),
        default="all",
        help="crash the worker after every step (all) or between the features agent's steps",
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
