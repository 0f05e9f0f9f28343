"""What handlers read from a request: bounded integers, the serving snapshot, the search threads.

Reads the query string, ``request.app[holder_key]`` and ``request.app[queries_key]``; writes
nothing. A bad value is a 400 and no snapshot yet a 503, each with a JSON ``{"error": message}``
body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from api.errors import json_error
from api.keys import holder_key, queries_key
from snapshots.serving import ServingView

T = TypeVar("T")


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` in ``[low, high]``, ``default`` when absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise json_error(
            web.HTTPBadRequest, f"{name} must be an integer, got {raw!r:.40}"
        ) from None
    if not low <= value <= high:
        raise json_error(
            web.HTTPBadRequest, f"{name} must be between {low} and {high}, got {value}"
        )
    return value


def current_snapshot(request: web.Request) -> ServingView:
    """The snapshot serving now; 503 before the first one is loaded."""
    snapshot = request.app[holder_key].current
    if snapshot is None:
        raise json_error(
            web.HTTPServiceUnavailable, "no index snapshot loaded yet; try again shortly"
        )
    return snapshot


def query_threads(request: web.Request) -> Executor:
    """The node's pool for searches (``api.query_threads`` threads)."""
    return request.app[queries_key]


async def off_loop(threads: Executor | None, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in ``threads``: a search must not stall the event loop.

    The pool is the node's own and bounded: on a machine of few cores, more threads than that
    add nothing but turns at the interpreter lock, which the event loop needs for every
    request. ``None`` is the loop's default pool (scripts and tests without a node).
    """
    return await asyncio.get_running_loop().run_in_executor(threads, partial(work, *args))
