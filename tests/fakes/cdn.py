"""A local audio host for download tests: clips, and every way a download can go wrong.

Serves ``/clips/{name}`` (a clip's bytes), ``/stall`` (never answers), ``/stall-body`` (sends
headers and a first chunk, then nothing), ``/flaky/{key}?fail=N&status=S`` (fails N times, then
serves a clip), ``/redirect?to=URL`` (302), ``/loop/{n}`` (redirects for ever), ``/empty``,
``/big?size=N&declare=0|1`` (N bytes, with or without a Content-Length), ``/status/{code}``
and ``/html``. Writes nothing; counts every request it receives.
"""

from __future__ import annotations

from aiohttp import web

from tests.fakes.catalogue import Catalogue
from tests.fakes.server import FakeServer

_CHUNK = 64 * 1024


class FakeCdn(FakeServer):
    """Serves the catalogue's clips and scripted failures."""

    def __init__(self, catalogue: Catalogue) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.failures: dict[str, int] = {}

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return f"{self.base_url}{path}"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/clips/{name}", self.clip),
            web.get("/stall", self.stall),
            web.get("/stall-body", self.stall_body),
            web.get("/flaky/{key}", self.flaky),
            web.get("/redirect", self.redirect),
            web.get("/loop/{n}", self.loop),
            web.get("/empty", self.empty),
            web.get("/big", self.big),
            web.get("/status/{code}", self.status),
            web.get("/html", self.html),
        ]

    async def clip(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        found = [c for c in self.catalogue.clips if c.name == name]
        if not found:
            return web.Response(status=404)
        return web.Response(body=found[0].data, content_type=found[0].content_type)

    async def stall(self, request: web.Request) -> web.Response:
        await self.closing.wait()
        return web.Response(status=503)

    async def stall_body(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await response.prepare(request)
        await response.write(b"\xff" * 1024)
        await self.closing.wait()
        return response

    async def flaky(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        failed = self.failures.get(key, 0)
        if failed < int(request.query.get("fail", "1")):
            self.failures[key] = failed + 1
            return web.Response(status=int(request.query.get("status", "503")))
        clip = self.catalogue.clip(request.query.get("clip", "trumpet"))
        return web.Response(body=clip.data, content_type=clip.content_type)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def loop(self, request: web.Request) -> web.Response:
        following = f"/loop/{int(request.match_info['n']) + 1}"
        raise web.HTTPFound(following)

    async def empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="audio/mpeg")

    async def big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        headers = {"Content-Type": "audio/mpeg"}
        if request.query.get("declare") == "1":
            headers["Content-Length"] = str(size)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        sent = 0
        try:
            while sent < size:
                part = min(_CHUNK, size - sent)
                await response.write(b"\0" * part)
                sent += part
            await response.write_eof()
        except ConnectionResetError:  # the client stopped reading at its cap, as it should
            pass
        return response

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>portal</html>", content_type="text/html")
