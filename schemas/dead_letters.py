"""The dead-letter record, version 2, and one reader for every version on ``dead-letters.v1``.

Reads and writes JSON bytes. A :class:`DeadLetterV2` keeps everything needed to send the
original message again exactly as it was: its key, value and header values as base64 (so bytes
that are not UTF-8 survive bit for bit), its timestamp and where it was read (topic, partition,
offset), and why it was parked (agent, error class, reason, attempts). :func:`read_dead_letter`
turns a v2 record or an older :class:`~schemas.errors.DeadLetterV1` (whose payload was decoded
with replacement characters, so it may not be the original bytes) into one :class:`DeadLetter`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import faust

from schemas.decoding import decode
from schemas.errors import DeadLetterV1, InvalidRecord

V1_NAMESPACE = "spotrec.dead_letter.v1"
V2_NAMESPACE = "spotrec.dead_letter.v2"
#: The largest original value a dead letter keeps: twice the broker's default message size, so
#: every record our topics accept is kept whole. Base64 makes it a third bigger; the dead-letter
#: topic and the worker's producer allow that (``streams.provision.DEAD_LETTER_MAX_BYTES``). A
#: larger value is dropped (its size recorded) rather than failing the agent that parks it.
MAX_KEPT_VALUE_BYTES = 2 * 1024 * 1024


class DeadLetterV2(
    faust.Record,
    serializer="json",
    namespace=V2_NAMESPACE,
    validation=True,
):
    """A message an agent could not process, kept whole so it can be sent again."""

    topic: str
    partition: int
    offset: int
    reason: str
    agent: str
    #: The original value, base64: the exact bytes, whatever they are ("" when empty).
    value_b64: str | None
    #: The original headers in order, each ``[name, base64 of the value]``.
    headers: list[list[str]]
    #: The original key, base64; None when the message had none.
    key_b64: str | None = None
    #: The original message's timestamp, milliseconds since the epoch (None if unknown).
    timestamp_ms: int | None = None
    #: The exception's class name; None when the agent refused the message without one.
    error: str | None = None
    #: How many times processing was tried before the message was parked.
    attempts: int = 1
    failed_at: float = 0.0
    #: Set when the value was too large to keep (then ``value_b64`` is None): its size in bytes.
    dropped_value_bytes: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter of any version, with the original message's bytes.

    Attributes:
        version: 1 or 2.
        topic: The topic the message was read from (full name, with any prefix).
        partition: Its partition there.
        offset: Its offset there.
        reason: Why it was parked.
        agent: The agent that parked it.
        value: The original value (for version 1: re-encoded from lossy text).
        key: The original key, or None.
        headers: The original headers, in order.
        timestamp_ms: The original timestamp, if known.
        error: The exception's class name, or "".
        attempts: Tries before it was parked.
        failed_at: When it was parked (seconds since the epoch).
        exact: Whether ``value`` and ``key`` are the original bytes (from version 2, unless the
            value was too large to keep).
    """

    version: int
    topic: str
    partition: int
    offset: int
    reason: str
    agent: str
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int | None
    error: str
    attempts: int
    failed_at: float
    exact: bool


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"{V2_NAMESPACE}: field {field!r} is not base64"
        raise InvalidRecord(msg) from exc


def dead_letter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    agent: str,
    value: bytes,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
    timestamp_ms: int | None,
    error: str | None,
    attempts: int,
    failed_at: float,
) -> DeadLetterV2:
    """A :class:`DeadLetterV2` holding the given original bytes (the value if it is kept)."""
    dropped = len(value) if len(value) > MAX_KEPT_VALUE_BYTES else None
    if dropped is not None:
        reason = f"{reason} (the value of {dropped} bytes was too large to keep)"
    return DeadLetterV2(
        topic=topic,
        partition=partition,
        offset=offset,
        reason=reason,
        agent=agent,
        value_b64=None if dropped is not None else _b64(value) or None,
        dropped_value_bytes=dropped,
        key_b64=_b64(key) if key is not None else None,
        headers=[[name, _b64(data)] for name, data in headers],
        timestamp_ms=timestamp_ms,
        error=error,
        attempts=attempts,
        failed_at=failed_at,
    )


def read_dead_letter(raw: bytes) -> DeadLetter:
    """Decode a dead letter of either version.

    Raises:
        InvalidRecord: The bytes are neither version (the message says why).
    """
    try:
        namespace = json.loads(raw).get("__faust", {}).get("ns")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        namespace = None
    if namespace == V1_NAMESPACE:
        old = decode(DeadLetterV1, raw, max_bytes=None)
        return DeadLetter(
            version=1,
            topic=old.topic,
            partition=old.partition,
            offset=old.offset,
            reason=old.reason,
            agent=old.agent,
            value=old.payload.encode(),
            key=old.key.encode() if old.key is not None else None,
            headers=(),
            timestamp_ms=None,
            error="",
            attempts=1,
            failed_at=old.failed_at,
            exact="\ufffd" not in old.payload + (old.key or ""),
        )
    new = decode(DeadLetterV2, raw, max_bytes=None)
    headers = []
    for pair in new.headers:
        if len(pair) != 2:
            msg = f"{V2_NAMESPACE}: a header is not a [name, value] pair"
            raise InvalidRecord(msg)
        headers.append((pair[0], _unb64(pair[1], "headers")))
    return DeadLetter(
        version=2,
        topic=new.topic,
        partition=new.partition,
        offset=new.offset,
        reason=new.reason,
        agent=new.agent,
        value=_unb64(new.value_b64 or "", "value_b64"),
        key=_unb64(new.key_b64, "key_b64") if new.key_b64 is not None else None,
        headers=tuple(headers),
        timestamp_ms=new.timestamp_ms,
        error=new.error or "",
        attempts=new.attempts,
        failed_at=new.failed_at,
        exact=new.dropped_value_bytes is None,
    )
