"""Fixtures of the fake servers (from :mod:`tests.fakes.fixtures`) for the sources tests."""

from __future__ import annotations

from tests.fakes.fixtures import (  # noqa: F401  # pytest finds fixtures by name in a conftest
    catalogue,
    fake_cdn,
    fake_deezer,
    fake_settings,
    fake_spotify,
)
