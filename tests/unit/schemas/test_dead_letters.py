"""Dead-letter records keep the original bytes exactly, and old text letters are still read."""

from __future__ import annotations

import os

import pytest

from schemas.dead_letters import MAX_KEPT_VALUE_BYTES, dead_letter_record, read_dead_letter
from schemas.errors import DeadLetterV1, InvalidRecord
from sources.redaction import scrub_urls


def _record(value: bytes, key: bytes | None = b"k") -> bytes:
    return dead_letter_record(
        topic="p.track-discovered.v1",
        partition=3,
        offset=41,
        reason="why",
        agent="fetch_track_audio",
        value=value,
        key=key,
        headers=[("a", b"\x00\xff"), ("a", b"")],
        timestamp_ms=1_700_000_000_123,
        error="TimeoutError",
        attempts=4,
        failed_at=5.0,
    ).dumps()


@pytest.mark.parametrize("value", [b"", b"plain", b"\xff\xfe\x00\x80", os.urandom(2048)])
def test_every_byte_survives(value: bytes) -> None:
    letter = read_dead_letter(_record(value, key=b"\xc3\x28"))
    assert (letter.value, letter.key, letter.headers) == (
        value,
        b"\xc3\x28",
        (("a", b"\x00\xff"), ("a", b"")),
    )
    assert (letter.version, letter.exact, letter.attempts, letter.error) == (
        2,
        True,
        4,
        "TimeoutError",
    )
    assert (letter.partition, letter.offset, letter.timestamp_ms) == (3, 41, 1_700_000_000_123)


def test_a_value_too_large_to_keep_is_dropped_and_said_so() -> None:
    letter = read_dead_letter(_record(b"x" * (MAX_KEPT_VALUE_BYTES + 1)))
    assert not letter.exact
    assert letter.value == b""
    assert f"the value of {MAX_KEPT_VALUE_BYTES + 1} bytes was too large to keep" in letter.reason


def test_version_one_letters_are_read_and_flagged_when_lossy() -> None:
    text = DeadLetterV1(
        topic="t", partition=0, offset=1, reason="r", payload="37i9dQ", key="k", agent="a"
    )
    lossy = DeadLetterV1(topic="t", partition=0, offset=2, reason="r", payload="\ufffd", agent="a")
    assert (read_dead_letter(text.dumps()).value, read_dead_letter(text.dumps()).exact) == (
        b"37i9dQ",
        True,
    )
    assert not read_dead_letter(lossy.dumps()).exact


@pytest.mark.parametrize("raw", [b"", b"[]", b'{"__faust": {"ns": "spotrec.dead_letter.v2"}}'])
def test_other_bytes_are_not_dead_letters(raw: bytes) -> None:
    with pytest.raises(InvalidRecord):
        read_dead_letter(raw)


def test_signed_query_strings_are_scrubbed() -> None:
    text = "download from https://cdn.dzcdn.net/a/b.mp3?hdnea=exp=1~hmac=abc#frag failed; see http://x.org/y"
    assert scrub_urls(text) == (
        "download from https://cdn.dzcdn.net/a/b.mp3?(redacted) failed; see http://x.org/y"
    )
