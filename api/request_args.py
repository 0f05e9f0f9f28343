"""What every handler reads from a request: bounded integer parameters and the serving snapshot.

Reads the query string and ``request.app[holder_key]``; writes nothing. A bad value is a 400 and
no snapshot yet a 503, each with a JSON ``{"error": message}`` body.
"""

from __future__ import annotations

from aiohttp import web

from api.errors import json_error
from api.keys import holder_key
from snapshots.serving import ServingView


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
