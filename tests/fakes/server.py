"""The base of every fake server: an aiohttp app on 127.0.0.1 and an ephemeral port.

Reads nothing; records the path and query of every request it receives (``requests``), so a
test can prove a request was, or was never, made. Listening on a real port, it also serves a
worker running in another process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Self

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeServer:
    """Starts and stops one aiohttp app; subclasses provide the routes."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.base_url = ""
        #: Set when the server stops: handlers that stall on purpose wait on it.
        self.closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def count(self, prefix: str) -> int:
        """How many requests had a path starting with ``prefix``."""
        return sum(1 for path in self.requests if path.startswith(prefix))

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        return await handler(request)

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.add_routes(self.routes())
        # handler_cancellation: a client that gives up cancels the handler, so a stalled handler
        # never holds the shutdown; access_log=None keeps test output quiet.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
