"""``spotrec reindex`` parses its modes and limits, and refuses bad values with a clear message."""

from __future__ import annotations

import pytest

from cli import build_parser
from streams.replay import Progress


def test_both_modes_and_the_replay_limits_parse() -> None:
    args = build_parser().parse_args(
        ["reindex", "--from", "tracks", "--batch-size", "20", "--max-rate", "2.5", "--restart"]
    )
    assert (args.source, args.batch_size, args.max_rate, args.restart) == ("tracks", 20, 2.5, True)
    args = build_parser().parse_args(["reindex", "--from", "features"])
    assert (args.source, args.batch_size, args.max_rate, args.restart) == (
        "features",
        500,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "audio"], "invalid choice: 'audio'"),
        (["--from", "tracks", "--batch-size", "0"], "expected a positive int, got '0'"),
        (["--from", "tracks", "--max-rate", "-1"], "expected a positive float, got '-1'"),
        (["--from", "tracks", "--max-rate", "fast"], "expected a positive float, got 'fast'"),
    ],
)
def test_bad_arguments_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["reindex", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_progress_line_shows_done_total_rate_and_time_left() -> None:
    progress = Progress("t.features-extracted.v1", total=400)
    progress.done = 100
    progress.started -= 10.0  # as if 10 s had passed
    line = progress.line()
    assert line.startswith("t.features-extracted.v1: 100/400 (25%), 10/s, ")
    assert line.endswith("30 s left")
