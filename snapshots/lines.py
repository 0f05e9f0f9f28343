"""Track metadata rows as JSON lines encoded into one buffer, with their byte offsets.

Reads and writes nothing: rows (``tracks.jsonl`` objects, see
:func:`snapshots.builder.track_line`) or already encoded lines in, one ``bytes`` buffer and an
``int64`` offsets array out. A million rows held this way cost their encoded size (about 170
bytes each) instead of a dict, lists and strings per row, so the builder's input stays compact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One row as the builder writes it to ``tracks.jsonl``: a JSON object and a newline."""
    return (json.dumps(row, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class Lines:
    """Encoded JSON lines: line ``i`` is ``data[offsets[i]:offsets[i + 1]]``, newline included.

    Attributes:
        data: The lines, one after the other, each ending with a newline.
        offsets: ``len(lines) + 1`` increasing byte offsets into ``data``, from 0 to its length.
    """

    data: bytes
    offsets: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        if (
            self.offsets.ndim != 1
            or len(self.offsets) == 0
            or self.offsets[0] != 0
            or self.offsets[-1] != len(self.data)
        ):
            msg = "offsets must run from 0 to the length of the data"
            raise ValueError(msg)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def line(self, row: int) -> bytes:
        """Line ``row``, newline included."""
        return self.data[int(self.offsets[row]) : int(self.offsets[row + 1])]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Lines:
        """Encode ``rows`` (see :func:`encode_row`)."""
        builder = LinesBuilder()
        for row in rows:
            builder.add(encode_row(row))
        return builder.finish()

    @classmethod
    def from_jsonl(cls, data: bytes) -> Lines:
        """Split a JSON-lines buffer (``data`` kept as it is; a last line needs its newline).

        Raises:
            ValueError: ``data`` is not empty and does not end with a newline.
        """
        if data and not data.endswith(b"\n"):
            msg = "the last JSON line has no newline"
            raise ValueError(msg)
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
        offsets = np.zeros(len(ends) + 1, dtype=np.int64)
        offsets[1:] = ends
        return cls(data, offsets)


class LinesBuilder:
    """Appends encoded lines to one growing buffer (no object kept per line)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._offsets = np.zeros(1024, dtype=np.int64)
        self._count = 0

    def add(self, line: bytes) -> None:
        """Append one line; it must end with its only newline."""
        if not line.endswith(b"\n") or b"\n" in line[:-1]:
            msg = "a line must end with its only newline"
            raise ValueError(msg)
        self._data += line
        if self._count + 1 == len(self._offsets):
            grown = np.zeros(len(self._offsets) * 2, dtype=np.int64)
            grown[: self._count + 1] = self._offsets[: self._count + 1]
            self._offsets = grown
        self._count += 1
        self._offsets[self._count] = len(self._data)

    def finish(self) -> Lines:
        """The lines added so far."""
        return Lines(bytes(self._data), self._offsets[: self._count + 1].copy())


def tag_pairs(tags: Mapping[str, float]) -> list[list[Any]]:
    """Tags as ``tracks.jsonl`` holds them: ``[tag, score]`` pairs best first, 4 decimals.

    A list, because JSON objects carry no order, so "top tags" are a prefix.
    """
    ordered = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))
    return [[tag, round(float(score), 4)] for tag, score in ordered]


def _value(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def encode_fields(name: str | None, artists: Iterable[str], album: str | None) -> bytes:
    """The ``name``, ``artists`` and ``album`` members of a row, encoded (see :func:`compose`)."""
    return json.dumps({"name": name, "artists": list(artists), "album": album}, ensure_ascii=False)[
        1:-1
    ].encode()


def encode_tags(tags: Mapping[str, float]) -> bytes:
    """The ``tags`` value of a row, encoded (see :func:`compose`)."""
    return _value(tag_pairs(tags))


def encode_optional(value: str | None) -> bytes:
    """An optional string value, encoded; empty for ``None`` (the member is left out)."""
    return b"" if value is None else _value(value)


#: The fields of a track the catalogue knows nothing about.
NO_FIELDS = encode_fields(None, (), None)


def compose(track_id: str, fields: bytes, tags: bytes, isrc: bytes, digest: bytes) -> bytes:
    """A row's line from its encoded parts: byte for byte what :func:`encode_row` gives for it.

    Args:
        track_id: The track.
        fields: :func:`encode_fields` (or :data:`NO_FIELDS`).
        tags: :func:`encode_tags`.
        isrc: :func:`encode_optional` of the ISRC.
        digest: :func:`encode_optional` of the audio's sha256.
    """
    parts = [b'{"track_id": ', _value(track_id), b", ", fields]
    if isrc:
        parts += [b', "isrc": ', isrc]
    parts += [b', "tags": ', tags]
    if digest:
        parts += [b', "audio_sha256": ', digest]
    parts.append(b"}\n")
    return b"".join(parts)


class Slots:
    """One encoded value per row in one growing buffer; setting a row again replaces its value."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._spans = np.zeros((1024, 2), dtype=np.int64)  # per row: start, end
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, value: bytes) -> int:
        """Add a row holding ``value``; returns its index."""
        if self._count == len(self._spans):
            grown = np.zeros((len(self._spans) * 2, 2), dtype=np.int64)
            grown[: self._count] = self._spans[: self._count]
            self._spans = grown
        self._count += 1
        self.set(self._count - 1, value)
        return self._count - 1

    def set(self, row: int, value: bytes) -> None:
        """Replace row ``row``'s value (the old bytes stay in the buffer, unreferenced)."""
        if not 0 <= row < self._count:
            msg = f"row {row} of {self._count}"
            raise IndexError(msg)
        self._spans[row] = (len(self._data), len(self._data) + len(value))
        self._data += value

    def __getitem__(self, row: int) -> bytes:
        if not 0 <= row < self._count:
            msg = f"row {row} of {self._count}"
            raise IndexError(msg)
        start, end = self._spans[row]
        return bytes(self._data[int(start) : int(end)])
