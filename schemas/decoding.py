"""Strict decoding of the raw bytes on a topic into one record class.

Reads JSON bytes; returns an instance of exactly the requested class or raises
:class:`~schemas.errors.InvalidRecord`. Faust's own ``Record.loads`` is not used on input: it
returns whatever class the payload's namespace names, and does not look inside lists.
Unknown fields are ignored, because schemas only grow by optional fields within a version.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, TypeVar

import faust

from schemas.errors import InvalidRecord

R = TypeVar("R", bound=faust.Record)

#: The largest record accepted, in bytes. Pipeline records are a few KiB (a 200-d vector is
#: about 4 KiB of JSON); anything much larger is not one of ours, and parsing it costs memory.
MAX_RECORD_BYTES = 256 * 1024


def decode(cls: type[R], raw: bytes, *, max_bytes: int | None = MAX_RECORD_BYTES) -> R:
    """Decode ``raw`` as a ``cls`` record, checking every field's type.

    ``max_bytes`` (None: no limit) bounds what is parsed at all; a dead letter, which carries a
    whole refused message, is read without it.

    Raises:
        InvalidRecord: The bytes are too many, not a JSON object, name another record type,
            lack a required field, or hold a value of the wrong type; the message says which.
    """
    name = cls._options.namespace
    if max_bytes is not None and len(raw) > max_bytes:
        msg = f"a record of {len(raw)} bytes; a {name} record is at most {max_bytes}"
        raise InvalidRecord(msg)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"not JSON ({exc}); expected a {name} record"
        raise InvalidRecord(msg) from exc
    if not isinstance(data, dict):
        msg = f"a JSON {type(data).__name__}; expected a {name} record (an object)"
        raise InvalidRecord(msg)
    meta = data.pop("__faust", None)
    if isinstance(meta, dict) and meta.get("ns") not in (None, name):
        msg = f"a {meta.get('ns')} record; expected {name}"
        raise InvalidRecord(msg)
    hints = _hints(cls)
    fields = {k: v for k, v in data.items() if k in cls._options.fields}
    for field, value in fields.items():
        if not _conforms(value, hints[field]):
            msg = f"{name}: field {field!r} holds {value!r:.80}, expected {hints[field]}"
            raise InvalidRecord(msg)
    try:
        return cls(**fields)
    except (TypeError, ValueError) as exc:
        msg = f"{name}: {exc}"
        raise InvalidRecord(msg) from exc


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    # Resolving string annotations costs more than the rest of decoding: once per record class.
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _conforms(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits a simple annotation: scalars, ``list[X]``, unions, ``None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arm) for arm in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if tp is float:
        # JSON has one number type: an integral float may arrive as an int.
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)
