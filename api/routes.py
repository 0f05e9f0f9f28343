"""The query node's route table."""

from __future__ import annotations

from aiohttp import web

from api import recommend_views, subsonic, views
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
