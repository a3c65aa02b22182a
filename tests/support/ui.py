"""The person's pages: a PS with the UI mounted in a world of real parts (:mod:`support.ps`), the
person's browser as httpx against the ASGI app (``ORIGIN``, :func:`client`, :func:`signed_in`,
:func:`open_link`, :func:`csrf`, :func:`waiting_ids`), and Debian's headless Chromium driven by
Playwright (``CHROMIUM``, ``CHROMIUM_ARGS``, :func:`sign_in`, ``TIMEOUT``; the ``browser``
fixture is in tests/conftest.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from aauth_agents.servers.person_server import person_server_of
from aauth_agents.servers.person_server.ui import (
    COOKIE,
    PersonServerUI,
    create_person_server_with_ui,
)
from support.ps import PASSWORD, World

TIMEOUT = 15_000  # ms, bounded waits for browser events
ORIGIN = "http://127.0.0.1"


def start_ui(world: World, **overrides: Any) -> PersonServerUI:
    """Start ``world``'s PS with the UI mounted; alice has an account."""
    app = create_person_server_with_ui(world.config(**overrides))
    world.app = app
    world.ps = person_server_of(app)
    world.attach(app)
    world.ps.accounts.create_account(
        "alice",
        PASSWORD,
        claims={"email": "alice@example.com", "email_verified": True, "name": "Alice Example"},
    )
    world.ps.accounts.create_account("bob", PASSWORD)
    ui = app.state.person_server_ui
    assert isinstance(ui, PersonServerUI)
    return ui


class Served:
    """A PS with the UI on ``http://127.0.0.1:PORT`` (``url``) and its world."""

    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.url = url


async def sign_in(page: Any, username: str = "alice", password: str = PASSWORD) -> None:
    """Sign in on the PS page open in ``page`` (Playwright)."""
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[name=signin]")


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def signed_in(
    client: httpx.AsyncClient, next_url: str = "/dashboard", username: str = "alice"
) -> httpx.Response:
    form = await client.get(f"/signin?next={next_url}")
    response = await client.post(
        "/signin",
        data={"csrf": csrf(form), "username": username, "password": PASSWORD, "next": next_url},
        headers={"origin": ORIGIN},
    )
    assert response.status_code == 303, response.text
    return await client.get(response.headers["location"])


def assert_page_headers(response: httpx.Response) -> None:
    """``response`` is a person page with the headers every page carries."""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


async def open_link(client: httpx.AsyncClient, link: str, **params: str) -> httpx.Response:
    """Open an interaction link in a browser that has been to the PS before (it has a
    session, anonymous here): the link is linked to that session and the browser redirected
    to the consent page (303). A browser without a session sees the request signed out
    instead (tests/person_server_ui/test_ui_links.py)."""
    if COOKIE not in client.cookies:
        await client.get("/signin")
    response = await client.get(link, params=params or None)
    assert response.status_code == 303, response.text
    return response


def client(world: World, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app), base_url=ORIGIN, cookies=cookies
    )


def waiting_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'class="box waiting" data-pending="([^"]+)"', page.text)
