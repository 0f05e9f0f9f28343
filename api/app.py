"""The query node's app factory: health and readiness for now.

Reads the settings; opens a Cassandra session for the app's lifetime; answers ``/healthz``
(the process is up) and ``/readyz`` (Cassandra answers a query).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from config.settings import Settings
from stores.cassandra import CassandraSession

settings_key = web.AppKey("settings", Settings)
cassandra_key = web.AppKey("cassandra", CassandraSession)


async def _cassandra(app: web.Application) -> AsyncIterator[None]:
    session = CassandraSession(app[settings_key].cassandra)
    await session.start()
    app[cassandra_key] = session
    yield
    await session.stop()


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Cassandra answers; 503 with the reason otherwise."""
    try:
        await request.app[cassandra_key].execute("SELECT release_version FROM system.local")
    except Exception as exc:  # noqa: BLE001  # any failure means not ready; say which
        return web.json_response(
            {"status": "unavailable", "error": f"cassandra: {type(exc).__name__}"}, status=503
        )
    return web.json_response({"status": "ready"})


def create_app(settings: Settings) -> web.Application:
    """The query node application."""
    app = web.Application()
    app[settings_key] = settings
    app.cleanup_ctx.append(_cassandra)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
