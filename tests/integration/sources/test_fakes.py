"""The fakes behave like the services they stand for, and their settings reach a subprocess."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from config.settings import Settings, load_settings
from tests.fakes.catalogue import Catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.fixtures import settings_env
from tests.fakes.spotify_api import FakeSpotify


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_the_token_endpoint_checks_client_credentials(fake_spotify: FakeSpotify) -> None:
    async with aiohttp.ClientSession() as session:
        good = {"Authorization": basic(fake_spotify.client_id, fake_spotify.client_secret)}
        bad = {"Authorization": basic(fake_spotify.client_id, "wrong")}
        form = {"grant_type": "client_credentials"}
        async with session.post(fake_spotify.token_url, data=form, headers=bad) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_client"
        async with session.post(fake_spotify.token_url, data=form, headers=good) as response:
            assert response.status == 200
            token = (await response.json())["access_token"]
        items = (
            f"{fake_spotify.api_url}playlists/{fake_spotify.catalogue.spotify_playlist_id}/items"
        )
        async with session.get(items) as response:
            assert response.status == 401
        async with session.get(items, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
        async with session.get(items, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200


async def test_deezer_errors_come_with_http_200(fake_deezer: FakeDeezer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_deezer.api_url}track/1") as response:
            assert response.status == 200
            assert (await response.json())["error"]["code"] == 800
        fake_deezer.quota_errors = 1
        async with session.get(f"{fake_deezer.api_url}track/1") as response:
            assert response.status == 200
            assert (await response.json())["error"]["code"] == 4


async def test_forged_preview_signatures_are_forbidden(
    fake_deezer: FakeDeezer, catalogue: Catalogue
) -> None:
    url = fake_deezer.preview_url(catalogue.clip("robin"))
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200
            assert await response.read() == catalogue.clip("robin").data
        async with session.get(forged) as response:
            assert response.status == 403


async def test_settings_env_carries_the_fake_settings_to_a_fresh_load(
    fake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings_env(fake_settings).items():
        monkeypatch.setenv(name, value)
    loaded = load_settings()
    assert loaded.spotify == fake_settings.spotify
    assert loaded.deezer.api_url == fake_settings.deezer.api_url
    assert loaded.deezer.backoff_s == fake_settings.deezer.backoff_s
    assert loaded.audio.allowed_hosts == fake_settings.audio.allowed_hosts
    assert loaded.audio.local_roots == fake_settings.audio.local_roots
