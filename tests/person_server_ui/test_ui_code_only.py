"""Code-only interaction URLs (``code_only_interaction``): one fixed URL for every interaction, the
person's ``?code=`` alone finds it. Codes stay unique, single use (the person's decision spends
them) and case-/hyphen-/alias-insensitive; wrong codes are limited per client address only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from support.ps import PASSWORD, PS, RES, Agent, World, make_world
from support.ui import open_link

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import person_server_of
from aauth_agents.servers.person_server.server import deferred as server_module
from aauth_agents.servers.person_server.ui import create_person_server_with_ui

ORIGIN = "http://127.0.0.1"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = make_world()
    app = create_person_server_with_ui(w.config(code_only_interaction=True), code_failures=8)
    w.app, w.ps = app, person_server_of(app)
    w.attach(app)
    w.ps.accounts.create_account("alice", PASSWORD)
    try:
        yield w
    finally:
        await w.close()


def http_browser(world: World) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url=ORIGIN)


async def ask(world: World) -> tuple[Agent, httpx.Response, str, str]:
    agent = world.agent()
    pending = await agent.post("/person", {"resource": RES})
    assert pending.status_code == 202, pending.text
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    return agent, pending, requirement.url, requirement.code


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def as_typed(code: str) -> str:
    """How a person might type it: lower case, no hyphen, O for 0 and l for 1."""
    return code.replace("-", "").lower().replace("0", "o").replace("1", "l")


async def approve(client: httpx.AsyncClient, consent: str) -> httpx.Response:
    form = await client.get(consent)
    signed = await client.post(
        "/signin",
        data={"csrf": csrf(form), "username": "alice", "password": PASSWORD, "next": consent},
        headers={"origin": ORIGIN},
    )
    assert signed.status_code == 303, signed.text
    page = await client.get(consent)
    decided = await client.post(
        consent, data={"csrf": csrf(page), "action": "approve"}, headers={"origin": ORIGIN}
    )
    assert decided.status_code == 303, decided.text
    return await client.get(decided.headers["location"])


async def test_one_url_and_the_code_finds_the_interaction(world: World) -> None:
    agent, pending, url, code = await ask(world)
    _, _, other_url, other_code = await ask(world)
    assert url == other_url == f"{PS}/interact" and code != other_code
    async with http_browser(world) as client:
        # A browser without a session sees the request signed out; nothing is spent.
        shown = await client.get("/interact", params={"code": as_typed(code)})
        assert shown.status_code == 200 and 'id="signin"' in shown.text, shown.text
        assert (await agent.get(pending.headers["location"])).json() == {"status": "pending"}
        signed = await client.post(
            "/interact",
            data={
                "csrf": csrf(shown),
                "code": as_typed(code),
                "username": "alice",
                "password": PASSWORD,
            },
            headers={"origin": ORIGIN},
        )
        assert signed.status_code == 303, signed.text
        consent = signed.headers["location"]
        assert consent.startswith("/consent/") and "code" not in consent
        again = await client.get("/interact", params={"code": code})  # a reload
        assert again.status_code == 303 and again.headers["location"] == consent
        assert 'id="approve"' in (await client.get(consent)).text
        assert (await agent.get(pending.headers["location"])).json() == {"status": "interacting"}
        done = await approve(client, consent)
        assert done.status_code == 200 and "approved" in done.text
    granted = await agent.get(pending.headers["location"])
    assert granted.status_code == 200, granted.text
    await world.check_person_token(
        granted.json()["person_token"], agent.public, not_after=agent.exp
    )


async def test_the_decision_spends_the_code(world: World) -> None:
    """§Interaction Code Format: single use -- the code opens the request in any browser
    until the person decides; after that every presentation is ``invalid_code``."""
    _, _, _, code = await ask(world)
    async with http_browser(world) as first, http_browser(world) as second:
        assert (await first.get("/interact", params={"code": code})).status_code == 200
        assert (await second.get("/interact", params={"code": code})).status_code == 200
        opened = await open_link(first, f"/interact?code={code}")
        await approve(first, opened.headers["location"])
        used = await second.get("/interact", params={"code": code})
    assert used.status_code == 410 and 'id="error-code">invalid_code<' in used.text


async def test_wrong_codes_never_end_an_interaction_but_are_rate_limited(world: World) -> None:
    agent, pending, _, code = await ask(world)
    async with http_browser(world) as client:
        # More wrong codes than code_attempts (5): no interaction can count them ...
        for wrong in (
            "AAAA-AAAA",
            "BBBB-BBBB",
            "not a code!",
            "ZZZZ-ZZZZ",
            "CCCC-CCCC",
            "DDDD-DDDD",
            "EEEE-EEEE",
        ):
            response = await client.get("/interact", params={"code": wrong})
            assert response.status_code == 410, response.text
        # ... the interaction is still alive and opens with its own code ...
        assert (await client.get("/interact", params={"code": code})).status_code == 200
        assert (await agent.get(pending.headers["location"])).json() == {"status": "pending"}
        # ... while this address has used up its budget (code_failures=8).
        assert (await client.get("/interact", params={"code": "FFFF-FFFF"})).status_code == 410
        _, _, _, fresh = await ask(world)
        limited = await client.get("/interact", params={"code": fresh})
        assert limited.status_code == 429


@pytest.fixture
def repeated_codes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """generate_code returns the same code twice, then a different one."""
    codes = ["7KQ2-M9XD", "7KQ2-M9XD", "7kq2m9xd", "H4RT-W2NB"]
    drawn: list[str] = []

    def fake(length: int = 8, **_: Any) -> str:
        value = codes[min(len(drawn), len(codes) - 1)]
        drawn.append(value)
        return value

    monkeypatch.setattr(server_module, "generate_code", fake)
    yield drawn


async def test_a_code_in_use_is_never_handed_out_again(
    world: World, repeated_codes: list[str]
) -> None:
    first_agent, first, _, first_code = await ask(world)
    second_agent, second, _, second_code = await ask(world)
    # The second draw and its alias-equal variant were taken; the fourth draw was used.
    assert first_code == "7KQ2-M9XD" and second_code == "H4RT-W2NB"
    assert repeated_codes == ["7KQ2-M9XD", "7KQ2-M9XD", "7kq2m9xd", "H4RT-W2NB"]
    for code, agent, pending in (
        (first_code, first_agent, first),
        (second_code, second_agent, second),
    ):
        async with http_browser(world) as client:
            opened = await open_link(client, f"/interact?code={code}")
            await approve(client, opened.headers["location"])
        assert (await agent.get(pending.headers["location"])).status_code == 200


async def test_per_interaction_urls_stay_the_default(ui_world: World) -> None:
    _, _, url, _ = await ask(ui_world)
    assert url.startswith(f"{PS}/interact/") and len(url) > len(f"{PS}/interact/")
    async with http_browser(ui_world) as client:
        assert (await client.get("/interact", params={"code": "AAAA-AAAA"})).status_code == 404


async def test_code_only_page_in_chromium(world: World, browser: Any) -> None:
    """The person types the URL and code by hand, in Chromium, over loopback HTTP."""
    agent, pending, _, code = await ask(world)
    with LoopbackServer(world.app) as server:
        page = await browser.new_page()
        await page.goto(f"{server.url}/interact?code={as_typed(code)}")
        await page.locator("#agent").wait_for(timeout=15_000)  # the request, signed out
        await page.fill("input[name=username]", "alice")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[name=signin]")
        await page.locator("#approve").wait_for(timeout=15_000)
        assert "/consent/" in page.url and "code=" not in page.url
        await page.click("#approve")
        await page.locator("#message").wait_for(timeout=15_000)
        assert "approved" in await page.locator("#message").inner_text()
    granted = await agent.get(pending.headers["location"])
    assert granted.status_code == 200, granted.text
