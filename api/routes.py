"""The query node's route table."""

from __future__ import annotations

from aiohttp import web

from api import explore, metrics, openapi, pages, recommend_views, subsonic, views
from api.audio_query import recommend_audio


def setup_routes(app: web.Application) -> None:
    """Attach every route to ``app``."""
    app.router.add_get("/recommend", recommend_views.recommend_get)
    app.router.add_post("/recommend", recommend_views.recommend_post)
    app.router.add_post("/recommend/audio", recommend_audio)
    app.router.add_get("/path", recommend_views.path)
    subsonic.add_routes(app)
    app.router.add_get("/tracks", views.tracks)
    app.router.add_get("/tracks/unavailable", views.unavailable)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    # The explorer: search, one track's state and audio, the map, status, the page, the docs.
    app.router.add_get("/search", explore.search)
    app.router.add_get("/tracks/{track_id}", explore.track)
    app.router.add_get("/tracks/{track_id}/audio", explore.track_audio)
    app.router.add_get("/map", explore.catalogue_map)
    app.router.add_get("/status", explore.status)
    app.router.add_get("/metrics", metrics.metrics)
    app.router.add_get("/openapi.json", openapi.spec)
    app.router.add_get("/docs", pages.docs)
    app.router.add_get("/", pages.index)
    app.router.add_get("/assets/{name}", pages.asset)
