"""pytest fixtures for the fake Spotify, Deezer and audio servers, and settings pointing at them.

Reads the shared audio (through :mod:`tests.fakes.catalogue`); starts each fake on 127.0.0.1
with an ephemeral port for one test and stops it after. To use them elsewhere, import them into
a conftest together with the ``catalogue`` fixture they depend on
(``from tests.fakes.fixtures import catalogue, fake_deezer, fake_spotify``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Settings
from tests.fakes.catalogue import Catalogue, build_catalogue
from tests.fakes.cdn import FakeCdn
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify

#: Back-off used against the fakes, so retry tests take milliseconds, not seconds.
FAKE_BACKOFF_S = 0.01
FAKE_RATE_PER_S = 500.0
#: The allow-list entry for the fakes: their address, on whatever ports they listen.
FAKES_HOST = "127.0.0.1:*"


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    """The fake catalogue built from the shared recordings, once per session."""
    return build_catalogue()


@pytest.fixture
async def fake_spotify(catalogue: Catalogue) -> AsyncIterator[FakeSpotify]:
    """A fake Spotify Web API serving the catalogue's playlist (``catalogue.spotify_...``)."""
    async with FakeSpotify(catalogue) as server:
        yield server


@pytest.fixture
async def fake_deezer(catalogue: Catalogue) -> AsyncIterator[FakeDeezer]:
    """A fake Deezer API and preview CDN serving the catalogue."""
    async with FakeDeezer(catalogue) as server:
        yield server


@pytest.fixture
async def fake_cdn(catalogue: Catalogue) -> AsyncIterator[FakeCdn]:
    """A fake audio host with scripted failures (stalls, 5xx, redirects, oversize bodies)."""
    async with FakeCdn(catalogue) as server:
        yield server


def settings_for_fakes(
    settings: Settings,
    *,
    spotify: FakeSpotify | None = None,
    deezer: FakeDeezer | None = None,
    local_roots: tuple[Path, ...] = (),
) -> Settings:
    """A copy of ``settings`` pointed at the given fakes.

    Spotify's API and token URLs and its client id and secret; Deezer's API URL with a high
    rate and a short back-off; ``127.0.0.1`` on any port added to the allowed hosts and, as the
    loopback address is refused unless opted in, to the allowed addresses; the shared audio folder
    and ``local_roots`` added to the local roots; the audio back-off shortened.

    Args:
        settings: The settings to start from (the ``settings`` fixture).
        spotify: A started fake Spotify, or None to leave Spotify as configured.
        deezer: A started fake Deezer, or None to leave Deezer as configured.
        local_roots: More folders to allow ``local:`` playlists and ``file:`` audio from.

    Returns:
        The new, still frozen, settings.
    """
    update: dict[str, object] = {}
    if spotify is not None:
        update["spotify"] = settings.spotify.model_copy(
            update={
                "api_url": spotify.api_url,
                "token_url": spotify.token_url,
                "client_id": spotify.client_id,
                "client_secret": SecretStr(spotify.client_secret),
            }
        )
    if deezer is not None:
        update["deezer"] = settings.deezer.model_copy(
            update={
                "api_url": deezer.api_url,
                "rate_per_s": FAKE_RATE_PER_S,
                "backoff_s": FAKE_BACKOFF_S,
            }
        )
    fakes = [fake for fake in (spotify, deezer) if fake is not None]
    audio_roots = [fakes[0].catalogue.audio_dir] if fakes else []
    roots = (*settings.audio.local_roots, *audio_roots, *local_roots)
    hosts = settings.audio.allowed_hosts
    addresses = settings.audio.allowed_addresses
    update["audio"] = settings.audio.model_copy(
        update={
            "allowed_hosts": hosts if FAKES_HOST in hosts else (*hosts, FAKES_HOST),
            "allowed_addresses": addresses
            if "127.0.0.1" in addresses
            else (*addresses, "127.0.0.1"),
            "local_roots": roots,
            "backoff_s": FAKE_BACKOFF_S,
        }
    )
    return settings.model_copy(update=update)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``SPOTREC_*`` variables that make a worker subprocess read what
    :func:`settings_for_fakes` changed (credentials included: pass them to the child only).
    """
    secret = settings.spotify.client_secret
    return {
        "SPOTREC_SPOTIFY_API_URL": settings.spotify.api_url,
        "SPOTREC_SPOTIFY_TOKEN_URL": settings.spotify.token_url,
        "SPOTREC_SPOTIFY_CLIENT_ID": settings.spotify.client_id or "",
        "SPOTREC_SPOTIFY_CLIENT_SECRET": secret.get_secret_value() if secret else "",
        "SPOTREC_DEEZER_API_URL": settings.deezer.api_url,
        "SPOTREC_DEEZER_RATE_PER_S": str(settings.deezer.rate_per_s),
        "SPOTREC_DEEZER_BACKOFF_S": str(settings.deezer.backoff_s),
        "SPOTREC_AUDIO_ALLOWED_HOSTS": json.dumps(list(settings.audio.allowed_hosts)),
        "SPOTREC_AUDIO_ALLOWED_ADDRESSES": json.dumps(list(settings.audio.allowed_addresses)),
        "SPOTREC_AUDIO_LOCAL_ROOTS": json.dumps([str(p) for p in settings.audio.local_roots]),
        "SPOTREC_AUDIO_BACKOFF_S": str(settings.audio.backoff_s),
    }


@pytest.fixture
def fake_settings(
    settings: Settings, fake_spotify: FakeSpotify, fake_deezer: FakeDeezer
) -> Settings:
    """The session's settings pointed at a fake Spotify and a fake Deezer for this test."""
    return settings_for_fakes(settings, spotify=fake_spotify, deezer=fake_deezer)


def with_group(settings: Settings, group: str, **values: object) -> Settings:
    """A copy of ``settings`` with fields of one group changed, e.g. ``audio``'s timeout."""
    changed = getattr(settings, group).model_copy(update=values)
    return settings.model_copy(update={group: changed})
