"""The explorer page in headless Chromium, on the real pipeline's query node.

Searches by part of a name and opens the track with the keyboard, checks its neighbours and
the audio source of a playable one (a preview redirect the browser can follow), follows a
neighbour, sees the map with the track and its neighbours highlighted, on a desktop and on a
phone-sized screen, and uploads a clip to find the tracks that sound like it. Screenshots go to
``test-output/explorer/``.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.browser import chromium, output_dir
from tests.integration.pipeline.conftest import Pipeline
from tests.integration.pipeline.test_end_to_end import INGEST_DEADLINE_S, expected_track_ids
from tests.pipelines import produce_playlists, until

#: The track searched for, with playable audio, and part of a word of its name.
CLIP = "pistachio"
QUERY = "pista"
NEIGHBOURS = 10


async def _ingested(p: Pipeline) -> None:
    """Every catalogue track indexed (at once when the end-to-end test ingested already)."""
    expected = expected_track_ids(p)

    async def indexed() -> bool:
        response = await p.api.get("/tracks", params={"limit": 1000})
        if response.status != 200:
            return False
        body: dict[str, Any] = await response.json()
        return {t["track_id"] for t in body["tracks"]} == expected

    if not await indexed():
        await produce_playlists(
            p.env,
            [
                p.catalogue.spotify_playlist_id,
                f"deezer:{p.catalogue.deezer_playlist_id}",
                f"local:{p.catalogue.audio_dir / 'clips'}",
            ],
        )
        await until(indexed, INGEST_DEADLINE_S, "every track indexed", p.worker_log)

    async def searchable() -> bool:
        response = await p.api.get("/search", params={"q": "a"})
        return response.status == 200

    await until(searchable, 60, "the search index", p.worker_log, interval_s=0.2)


async def _open_by_search(page: Page, query: str, track_id: str) -> None:
    search = page.get_by_role("combobox")
    await search.click()
    await search.press_sequentially(query, delay=40)  # as one types
    options = page.locator("#results li[data-track-id]")
    await expect(page.locator(f'#results li[data-track-id="{track_id}"]')).to_be_visible()
    ids = [await o.get_attribute("data-track-id") for o in await options.all()]
    for _ in range(ids.index(track_id) + 1):
        await search.press("ArrowDown")
    await search.press("Enter")
    await page.wait_for_url(f"**/#/track/{track_id.replace(':', '%3A')}")


async def test_search_listen_follow_and_map(pipeline: Pipeline) -> None:
    p = pipeline
    await _ingested(p)
    clip = p.catalogue.clip(CLIP)
    track_id = f"isrc:{clip.isrc}"
    base = str(p.api.make_url("/"))
    shots = output_dir("explorer")

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(base)
        await expect(page.locator("#status-count")).to_have_text(str(len(expected_track_ids(p))))
        await page.screenshot(path=shots / "1-start.png")

        # Search by part of a word of the name, open the match with the keyboard.
        await _open_by_search(page, QUERY, track_id)
        await expect(page.locator("#track h1")).to_have_text(clip.title)
        await expect(page.locator("#track .meta")).to_contain_text(clip.artists[0])

        # Its neighbours, with scores, best first, never the track itself.
        rows = page.locator("ol.neighbours > li")
        await expect(rows).to_have_count(NEIGHBOURS)
        ids = [await r.get_attribute("data-track-id") for r in await rows.all()]
        assert track_id not in ids and len(set(ids)) == len(ids)
        scores = [float(await s.inner_text()) for s in await rows.locator(".score").all()]
        assert scores == sorted(scores, reverse=True)

        # A playable neighbour's audio: the node redirects to a preview the browser can fetch.
        playable = page.locator("ol.neighbours li button.play").first
        source = await playable.get_attribute("data-src")
        assert source is not None and source.startswith("/tracks/") and source.endswith("/audio")
        audio = await page.request.get(base.rstrip("/") + source)
        assert audio.ok and audio.headers["content-type"].startswith("audio/")
        assert len(await audio.body()) > 10_000
        await playable.click()
        assert (await page.locator("#player").get_attribute("src")) == source
        # The track's own player points at its own audio.
        main_audio = page.locator("#track audio.main")
        assert (await main_audio.get_attribute("src")) == f"/tracks/{track_id}/audio"

        # The map: points drawn, the track and its neighbours highlighted.
        canvas = page.locator("#map")
        await expect(canvas).to_have_attribute("data-highlighted", str(NEIGHBOURS + 1))
        assert int(await canvas.get_attribute("data-points") or 0) == len(expected_track_ids(p))
        await page.screenshot(path=shots / "2-track.png")

        # Follow a neighbour: its own view, bookmarkable by its URL.
        first = rows.first.locator("a")
        name = await first.inner_text()
        neighbour = ids[0] or ""
        await first.click()
        await expect(page.locator("#track h1")).to_have_text(name)
        assert page.url.endswith("#/track/" + neighbour.replace(":", "%3A"))
        await expect(page.locator("ol.neighbours > li")).to_have_count(NEIGHBOURS)
        await page.screenshot(path=shots / "3-neighbour.png")

        # The URL alone opens the view (a bookmark or a shared link).
        fresh = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        await fresh.goto(page.url)
        await expect(fresh.locator("#track h1")).to_have_text(name)
        await expect(fresh.locator("ol.neighbours > li")).to_have_count(NEIGHBOURS)
        width = await fresh.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page scrolls sideways on a phone"
        await fresh.screenshot(path=shots / "4-phone.png", full_page=True)

        # Sounds like a clip: upload a recording of the library; its own track comes first.
        await page.set_input_files("#clip", str(clip.path))
        await page.get_by_role("button", name="Find similar tracks").click()
        found = page.locator("#clip-results li[data-track-id]")
        await expect(found).to_have_count(NEIGHBOURS, timeout=120_000)  # the model loads first
        assert await found.first.get_attribute("data-track-id") == track_id
        await found.first.locator("a").click()
        await expect(page.locator("#track h1")).to_have_text(clip.title)
        await page.screenshot(path=shots / "5-clip.png")
        assert not errors, errors
