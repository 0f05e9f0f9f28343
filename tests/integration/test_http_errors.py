"""Every route of the query node answers bad HTTP with a 4xx, never a 5xx: a wrong method
is a JSON 405 naming the allowed methods.

The routes are read from the app's router, so a route added later is covered without editing
this file. Runs a real query node (its Cassandra session, object store and snapshot follower on
the real servers) and talks to it over a socket, so the HTTP parser's own refusals are seen too.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import Settings
from stores.objects import ensure_bucket

WRONG_METHODS = ("POST", "PUT", "DELETE", "PATCH")


@pytest.fixture
async def node(
    servers: Settings, unique: str, tmp_path: Path
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
            "index": servers.index.model_copy(update={"cache_dir": tmp_path / "cache"}),
        }
    )
    await ensure_bucket(settings.s3)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


def _routes(app: web.Application) -> dict[str, set[str]]:
    """Every registered path (variables filled with a sample value) and its methods."""
    paths: dict[str, set[str]] = {}
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        path = re.sub(r"\{[^}]*\}", "x", canonical)
        paths.setdefault(path, set()).add(route.method)
    return paths


async def _raw(client: TestClient[web.Request, web.Application], request: bytes) -> bytes:
    """Send ``request`` as is and read the whole answer (the server closes after an error)."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(1 << 16)
    finally:
        writer.close()


async def test_a_wrong_method_is_a_json_405_with_allow_on_every_route(
    node: TestClient[web.Request, web.Application],
) -> None:
    routes = _routes(node.app)
    assert {"/recommend", "/tracks", "/healthz", "/readyz"} <= set(routes)
    for path, methods in routes.items():
        for method in WRONG_METHODS:
            if method in methods:
                continue
            response = await node.request(method, path)
            assert response.status == 405, (method, path, await response.text())
            assert response.content_type == "application/json", (method, path)
            assert "error" in await response.json(), (method, path)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert allowed == methods, (method, path, allowed)


async def test_over_long_request_lines_and_headers_are_4xx_on_every_route(
    node: TestClient[web.Request, web.Application],
) -> None:
    for path in _routes(node.app):
        long_line = f"GET {path}?q={'a' * 20_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        long_header = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 20_000}\r\n\r\n".encode()
        many_headers = (
            f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"".join(b"X-H%d: v\r\n" % i for i in range(500))
            + b"\r\n"
        )
        for request in (long_line, long_header, many_headers):
            answer = await _raw(node, request)
            status_line = answer.partition(b"\r\n")[0]
            # Refused by aiohttp's parser before any handler runs (its body is plain text).
            status = int(status_line.split()[1])
            assert 400 <= status < 500, (path, status_line)
