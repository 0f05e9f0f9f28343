"""JSON error responses: every 4xx and 5xx the query node sends carries ``{"error": message}``.

Reads nothing; turns domain errors and aiohttp's HTTP exceptions into JSON bodies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP exception of the given class whose body is ``{"error": message}``."""
    return status(text=json.dumps({"error": message}), content_type="application/json")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give aiohttp's own errors (404 route, 405 method) and crashes JSON bodies too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        # Rewrite the body in place rather than building a new exception of the same class:
        # some classes need more arguments (405 needs the method and the allowed ones), and
        # the headers they set (``Allow``) must survive.
        exc.text = json.dumps({"error": exc.reason})
        exc.content_type = "application/json"
        raise
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        raise json_error(web.HTTPInternalServerError, "internal error") from None
