"""Fixtures for the person's pages: a PS with the UI (its world of real parts is the one the
person server tests use: ``tests/support/ps.py``; the UI helpers are ``tests/support/ui.py``),
served over loopback HTTP to Debian's headless Chromium driven by Playwright (the ``browser``
fixture, in tests/conftest.py).

The browser tests FAIL (never skip) when ``/usr/bin/chromium`` or the ``playwright`` package
is missing: CI must install them (``apt-get install -y chromium``; ``pip install playwright``
-- never ``playwright install``, Debian's Chromium is used).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.ps import World, make_world
from support.ui import Served, start_ui

from aauth_agents.servers import LoopbackServer


@pytest.fixture(params=["sqlite", "postgres"])
async def ui_world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """A PS with the UI, reached in process (agents through ``world.client``), keeping its
    state in SQLite (in memory) or in a fresh PostgreSQL database."""
    w = make_world()
    if request.param == "postgres":
        w.database = str(request.getfixturevalue("postgres_url"))
    start_ui(w)
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    w = make_world()
    start_ui(w)
    try:
        with LoopbackServer(w.app) as server:
            w.attach(server.url)
            yield Served(w, server.url)
    finally:
        await w.close()
