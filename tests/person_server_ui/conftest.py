"""Fixtures for the person's pages: a PS with the UI (its world of real parts is the one the
person server tests use: ``tests/person_server/ps_world.py``), served over loopback HTTP to
Debian's headless Chromium driven by Playwright.

The browser tests FAIL (never skip) when ``/usr/bin/chromium`` or the ``playwright`` package
is missing: CI must install them (``apt-get install -y chromium``; ``pip install playwright``
-- never ``playwright install``, Debian's Chromium is used).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "person_server"))

from ps_world import PASSWORD, World, make_world

from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import person_server_of
from aauth_agents.servers.person_server.ui import (
    PersonServerUI,
    create_person_server_with_ui,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def start_ui(world: World, **overrides: Any) -> PersonServerUI:
    """Start ``world``'s PS with the UI mounted; alice has an account."""
    app = create_person_server_with_ui(world.config(**overrides))
    world.app = app
    world.ps = person_server_of(app)
    world.attach(app)
    world.ps.accounts.create_account("alice", PASSWORD, claims={
        "email": "alice@example.com", "email_verified": True, "name": "Alice Example"})
    world.ps.accounts.create_account("bob", PASSWORD)
    ui = app.state.person_server_ui
    assert isinstance(ui, PersonServerUI)
    return ui


@pytest.fixture
async def ui_world() -> AsyncIterator[World]:
    """A PS with the UI, reached in process (agents through ``world.client``)."""
    w = make_world()
    start_ui(w)
    try:
        yield w
    finally:
        await w.close()


class Served:
    """A PS with the UI on ``http://127.0.0.1:PORT`` (``url``) and its world."""

    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.url = url


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


async def sign_in(page: Any, username: str = "alice") -> None:
    """Sign in on the PS page open in ``page`` (Playwright)."""
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[name=signin]")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A fresh headless Debian Chromium (its own temporary profile)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the consent page tests need Debian's Chromium "
                    "(apt-get install -y chromium)", pytrace=False)
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("the playwright package is missing (pip install playwright; the browser "
                    "is Debian's chromium, never `playwright install`)", pytrace=False)
    async with async_playwright() as pw:
        # launch() gives every browser a fresh temporary profile (user data dir).
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                            headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
