"""The query node's route table."""

from __future__ import annotations

from aiohttp import web

from api import views


def setup_routes(app: web.Application) -> None:
    """Attach every route to ``app``."""
    app.router.add_get("/recommend", views.recommend)
    app.router.add_get("/tracks", views.tracks)
    app.router.add_get("/tracks/unavailable", views.unavailable)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
