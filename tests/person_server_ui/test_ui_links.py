"""Consent links that survive real life, in headless Chromium (Debian's ``/usr/bin/chromium``)
against a PS on loopback HTTP: a link opened signed out shows the request and asks for
sign-in without spending the code; a link preview (a cookie-less ``GET`` or ``HEAD``, as chat
and mail apps make) spends nothing and makes no session; a link re-opened in a new browser
after the first one closed resumes the same request; the dashboard lists a new agent's
request (for the PS's ``default_person``, or for the person who opened it signed in); after
the decision the link is refused and no second decision lands (§Interaction Code Format:
the code correlates until the decision consumes it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.ps import RES, Agent, World, make_world, problem
from support.ui import TIMEOUT, Served, sign_in, start_ui

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server.ui import COOKIE, PersonServerUI
from aauth_agents.stores import PendingRecord


async def ask(served: Served) -> tuple[Agent, httpx.Response, str, str]:
    """A new agent asks for a person token: the agent, its 202, the link and the code."""
    agent = served.world.agent()
    pending = await agent.post("/person", {"resource": RES})
    assert pending.status_code == 202, pending.text
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    link = served.url + requirement.url.removeprefix("https://ps.example")
    return agent, pending, f"{link}?code={requirement.code}", requirement.code


def ui_of(served: Served) -> PersonServerUI:
    ui = served.world.app.state.person_server_ui
    assert isinstance(ui, PersonServerUI)
    return ui


async def record_of(served: Served, link: str) -> PendingRecord:
    assert served.world.ps is not None
    interaction_id = httpx.URL(link).path.rsplit("/", 1)[1]
    record = await served.world.ps.pending.aget_by_interaction(interaction_id)
    assert record is not None
    return record


async def preview(link: str) -> None:
    """What a chat app's link unfurler does: GET and HEAD without cookies."""
    async with httpx.AsyncClient() as unfurler:
        shown = await unfurler.get(link)
        assert shown.status_code == 200 and 'id="agent"' in shown.text
        assert COOKIE not in shown.cookies  # no session for it
        assert (await unfurler.head(link)).status_code == 200


async def test_opened_signed_out_previewed_then_approved(served: Served, browser: Any) -> None:
    agent, pending, link, _ = await ask(served)
    page = await (await browser.new_context()).new_page()
    await page.goto(link)
    # The request, signed out: who asks, and a sign-in form; nothing spent, nobody engaged.
    assert await page.locator("#agent-id").inner_text() == agent.agent_id
    assert await page.locator("#signin").is_visible()
    assert (await agent.poll(pending)).json() == {"status": "pending"}
    sessions = ui_of(served).sessions.count()
    await preview(link)
    assert ui_of(served).sessions.count() == sessions == 0
    record = await record_of(served, link)
    assert record.state == "pending" and record.code is not None and record.code_attempts == 0
    assert (await agent.poll(pending)).json() == {"status": "pending"}
    # The person signs in on that page: the consent screen, and the agent sees them there.
    await sign_in(page)
    await page.locator("#approve").wait_for(timeout=TIMEOUT)
    consent = page.url
    assert "/consent/" in consent and "code=" not in consent
    assert (await agent.poll(pending)).json() == {"status": "interacting"}
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert "approved" in await page.locator("#message").inner_text()
    granted = await agent.poll(pending)
    assert granted.status_code == 200, granted.text
    await served.world.check_person_token(
        granted.json()["person_token"], agent.public, not_after=agent.exp
    )
    # The decision spent the code: the link is refused everywhere, even to a preview ...
    other = await (await browser.new_context()).new_page()
    refused = await other.goto(link)
    assert refused is not None and refused.status == 410
    assert await other.locator("#error-code").inner_text() == "invalid_code"
    assert not await other.locator("#signin").count()
    async with httpx.AsyncClient() as unfurler:
        assert (await unfurler.get(link)).status_code == 410
    # ... the browser that decided sees the request done ...
    await page.goto(link)
    assert "/consent/" in page.url and not await page.locator("#approve").count()
    # ... and no second decision lands.
    again = await page.request.post(
        consent, form={"csrf": token or "", "action": "deny"}, headers={"origin": served.url}
    )
    assert again.status >= 400
    assert served.world.ps is not None
    view = await served.world.ps.interactions.get(record.id)
    assert view is not None and view.state == "completed" and view.error is None


async def test_a_link_reopened_after_the_tab_closed_resumes(served: Served, browser: Any) -> None:
    agent, pending, link, _ = await ask(served)
    first = await browser.new_context()
    page = await first.new_page()
    await page.goto(link)
    await sign_in(page)
    await page.locator("#approve").wait_for(timeout=TIMEOUT)
    consent = page.url
    await first.close()  # the private window is gone, and its cookies with it
    assert (await agent.poll(pending)).json() == {"status": "interacting"}
    # The same link, in a new browser: the same request, still waiting.
    page = await (await browser.new_context()).new_page()
    await page.goto(link)
    assert await page.locator("#signin").is_visible()
    await sign_in(page)
    await page.locator("#approve").wait_for(timeout=TIMEOUT)
    assert page.url == consent
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert (await agent.poll(pending)).status_code == 200


async def test_a_request_opened_signed_in_stays_on_the_persons_dashboard(
    served: Served, browser: Any
) -> None:
    """A new agent (no ``default_person``): the person who opened its link and signed in
    finds the request on their dashboard after closing the tab; nobody else does."""
    agent, pending, link, _ = await ask(served)
    record = await record_of(served, link)
    assert record.owner is None
    first = await browser.new_context()
    page = await first.new_page()
    await page.goto(link)
    await sign_in(page)
    await page.locator("#approve").wait_for(timeout=TIMEOUT)
    await first.close()
    review = f'a[href="/consent/{record.id}"]'
    bob = await (await browser.new_context()).new_page()
    await bob.goto(f"{served.url}/signin")
    await sign_in(bob, "bob")
    await bob.locator("h1").wait_for(timeout=TIMEOUT)
    assert "/dashboard" in bob.url and not await bob.locator(review).count()
    refused = await bob.goto(f"{served.url}/consent/{record.id}")
    assert refused is not None and refused.status == 404
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{served.url}/signin")
    await sign_in(page)
    await page.locator(review).click(timeout=TIMEOUT)
    await page.locator("#approve").click(timeout=TIMEOUT)
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert (await agent.poll(pending)).status_code == 200


@pytest.fixture
async def with_default_person() -> AsyncIterator[Served]:
    """A PS whose ``default_person`` is alice (as ``aauth-agents dev`` and
    ``serve ps --person`` configure it), with the interactive consent policy."""
    world: World = make_world()
    start_ui(world, default_person="alice")
    try:
        with LoopbackServer(world.app) as server:
            world.attach(server.url)
            yield Served(world, server.url)
    finally:
        await world.close()


async def test_the_dashboard_lists_a_new_agents_request(
    with_default_person: Served, browser: Any
) -> None:
    served = with_default_person
    agent, pending, link, _ = await ask(served)
    record = await record_of(served, link)
    review = f'a[href="/consent/{record.id}"]'
    # Nobody opened the link: the request waits on alice's dashboard.
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{served.url}/dashboard")
    await sign_in(page)
    await page.locator(review).wait_for(timeout=TIMEOUT)
    # Never on another person's.
    bob = await (await browser.new_context()).new_page()
    await bob.goto(f"{served.url}/dashboard")
    await sign_in(bob, "bob")
    await bob.locator("h1").wait_for(timeout=TIMEOUT)
    assert "/dashboard" in bob.url and not await bob.locator(review).count()
    await page.click(review)
    await page.locator("#approve").wait_for(timeout=TIMEOUT)
    assert (await agent.poll(pending)).json() == {"status": "interacting"}
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert (await agent.poll(pending)).status_code == 200
    await page.goto(f"{served.url}/dashboard")
    assert not await page.locator(review).count()


async def test_previews_with_wrong_codes_still_count(served: Served) -> None:
    """A cookie-less GET with a wrong code counts against the request like any other
    (§Interaction Code Format); with the right code the request still opens until the
    limit ends it for good."""
    agent, pending, link, code = await ask(served)
    wrong = link.replace(code, "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY")
    async with httpx.AsyncClient() as unfurler:
        for attempt in range(1, 5):
            assert (await unfurler.get(wrong)).status_code == 410
            assert (await record_of(served, link)).code_attempts == attempt
        assert (await unfurler.get(link)).status_code == 200
        assert (await unfurler.get(wrong)).status_code == 410  # the fifth: the end
        refused = await unfurler.get(link)
    assert refused.status_code == 410 and 'id="error-code">invalid_code<' in refused.text
    assert problem(await agent.poll(pending)) == "invalid_code"
    assert ui_of(served).sessions.count() == 0
