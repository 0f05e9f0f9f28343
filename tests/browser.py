"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Reads nothing; starts a browser with a fresh profile and stops it. Playwright's own browser
download is not used: the project's set-up installs Debian's package (``make browser``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from config.settings import PROJECT_ROOT

#: Where browser tests leave their screenshots (git-ignored).
OUTPUT = PROJECT_ROOT / "test-output"
#: Quiet, offline, reproducible: no sandbox (containers), no GPU, no background traffic.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The installed chromium; fails the test (never skips it) when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: run `make browser` (apt-get install -y chromium)"
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A started headless browser; every context it opens has a fresh profile."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def output_dir(name: str) -> Path:
    """A folder for one test's screenshots, emptied first."""
    folder = OUTPUT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
