"""Errors about records, and the dead-letter record.

The tree::

    RecordError
    └── InvalidRecord        a message that cannot be decoded or breaks its schema (not retriable)

``DeadLetterV1`` is the first version of the record on ``dead-letters.v1``; it decoded the
original bytes as text, so it was lossy. New dead letters are ``DeadLetterV2``
(``schemas.dead_letters``), which also reads this version.
"""

from __future__ import annotations

import faust


class RecordError(ValueError):
    """Something is wrong with a record."""

    retriable = False


class InvalidRecord(RecordError):
    """A message that cannot be decoded, or whose content breaks its schema."""


class DeadLetterV1(
    faust.Record,
    serializer="json",
    namespace="spotrec.dead_letter.v1",
    validation=True,
):
    """A message an agent could not process, kept with the reason."""

    topic: str
    partition: int
    offset: int
    reason: str
    #: The original value, decoded as UTF-8 with replacement characters where it was not text.
    payload: str
    key: str | None = None
    agent: str = ""
    failed_at: float = 0.0
