"""Every person page checked by axe-core in headless Chromium at a desk (1280x800) and a
phone (390x844) width: no serious or critical violation, no horizontal scrolling, the skip
link first in the tab order. A screenshot of each page at each width goes to
``$AAUTH_ARTIFACTS/person-pages`` (a temporary folder when unset): CI keeps them, the
repository never does.

axe-core is the npm package installed in tests/interop (``npm ci --prefix tests/interop``);
it is injected into the page with Playwright's ``add_script_tag``, which the pages' CSP
(``script-src 'none'``) would refuse: the test's browser context bypasses CSP
(``bypass_csp``), the pages keep theirs. The scene is real: agents sign requests to the PS,
the person signs in and clicks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.ps import DOCS, RES, Agent, World
from support.ui import TIMEOUT, Served, sign_in

from aauth_agents.protocol.requirement import parse_requirement

AXE = Path(__file__).parents[1] / "interop" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
BLOCKING = ("serious", "critical")


def artifacts() -> Path:
    folder = Path(os.environ.get("AAUTH_ARTIFACTS") or tempfile.gettempdir()) / "person-pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def audit(page: Any, name: str, width: str) -> None:
    """axe-core on the page as shown: no serious or critical violation; nothing wider than
    the viewport; the skip link first on Tab; a screenshot kept."""
    await page.screenshot(path=str(artifacts() / f"{name}-{width}.png"), full_page=True)
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    blocking = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]
    assert blocking == [], f"{name} at {width}: {blocking}"
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} at {width} scrolls sideways by {overflow}px"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip", name


def link_of(pending: httpx.Response) -> tuple[str, str]:
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    return requirement.url, requirement.code


async def approved(world: World, agent: Agent, pending: httpx.Response) -> httpx.Response:
    """The person approves ``pending`` (its interaction looked up with its code)."""
    assert world.ps is not None
    url, code = link_of(pending)
    view = await world.ps.interactions.lookup(url.rsplit("/", 1)[1], code)
    await world.ps.interactions.approve(view.id, "alice")
    done = await agent.poll(pending)
    assert done.status_code == 200, done.text
    return done


async def scene(world: World) -> httpx.Response:
    """Alice's agent, with a sign-in remembered at DOCS, access there, a mission, and a
    request for access to RES waiting; a new agent's request for her to open by link
    (returned)."""
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    token = await approved(world, agent, await agent.post("/person", {"resource": DOCS}))
    rt = await world.docs.resource_token(token.json()["person_token"], agent.public, "docs.read")
    await approved(world, agent, await agent.post("/token", {"resource_token": rt}))
    mission = await agent.post(
        "/mission",
        {
            "description": "# Plan a trip\n\nBook *flights* and a hotel.",
            "tools": [{"name": "WebSearch", "description": "Search the web"}],
            "resources": [RES],
        },
    )
    await approved(world, agent, mission)
    # Waiting: access to RES with two scopes (the consent page offers a checkbox each).
    signed = await approved(world, agent, await agent.post("/person", {"resource": RES}))
    rt = await world.resource.resource_token(
        signed.json()["person_token"], agent.public, "data.read data.write"
    )
    waiting = await agent.post("/token", {"resource_token": rt, "justification": "Weekly report"})
    assert waiting.status_code == 202, waiting.text
    newcomer = world.agent("newcomer")
    asked = await newcomer.post(
        "/person",
        {
            "resource": RES,
            "justification": "I will **summarise** your notes.",
            "capabilities": ["interaction", "clarification"],
        },
    )
    assert asked.status_code == 202, asked.text
    return asked


@pytest.mark.parametrize("width", list(WIDTHS))
async def test_every_page_passes_axe_at_desk_and_phone_width(
    served: Served, browser: Any, width: str
) -> None:
    assert AXE.exists(), f"{AXE} is missing: run npm ci --prefix tests/interop"
    asked = await scene(served.world)
    w, h = WIDTHS[width]
    context = await browser.new_context(
        viewport={"width": w, "height": h}, is_mobile=width == "phone", bypass_csp=True
    )
    page = await context.new_page()
    base = served.url
    url, code = link_of(asked)
    link = base + url.removeprefix("https://ps.example") + f"?code={code}"
    # The new agent's link in a browser that has never been here: the request, signed out.
    await page.goto(link)
    await page.locator("#signin").wait_for(timeout=TIMEOUT)
    await audit(page, "link-signed-out", width)
    await page.goto(base + "/")
    await audit(page, "home", width)
    await page.goto(base + "/signin")
    await audit(page, "signin", width)
    # The link again, with a session now: the consent page asks her to sign in.
    await page.goto(link)
    await page.locator("#signin").wait_for(timeout=TIMEOUT)
    await audit(page, "consent-signin", width)
    await sign_in(page)
    await page.locator("#decide").wait_for(timeout=TIMEOUT)
    consent = page.url
    await audit(page, "consent", width)
    # A question open: the page says it updates itself, and can be told not to.
    await page.fill("#ask textarea[name=question]", "Which notes exactly?")
    await page.click("#ask button[value=ask]")
    await page.locator("#waiting-0").wait_for(timeout=TIMEOUT)
    assert "updates itself" in await page.locator("#refreshing").inner_text()
    await page.goto(consent + "?refresh=off")
    await audit(page, "clarification", width)
    await page.goto(base + "/dashboard")
    await page.locator("#missions").wait_for(timeout=TIMEOUT)
    await audit(page, "dashboard", width)
    # Both wait for her: the new agent's request she opened, and her agent's.
    assert await page.locator("#waiting li").count() == 2
    await page.locator("#waiting li", has_text="wants access to").locator("a.review").click()
    await page.locator("#decide").wait_for(timeout=TIMEOUT)
    assert await page.locator("#scopes input[type=checkbox]").count() == 2
    await audit(page, "consent-scopes", width)
    await page.goto(base + "/dashboard")
    await page.click("#agents button.revoke")
    await page.locator("#confirm").wait_for(timeout=TIMEOUT)
    await audit(page, "revoke-confirm", width)
    await page.goto(base + "/dashboard")
    await page.click("#missions button:has-text('End mission')")
    await page.locator("#confirm").wait_for(timeout=TIMEOUT)
    await audit(page, "end-mission-confirm", width)
    await page.goto(base + "/dashboard")
    await page.click("#missions a.mission-log")
    await page.locator("#log").wait_for(timeout=TIMEOUT)
    await audit(page, "mission-log", width)
    await page.goto(base + "/consent/no-such-request")
    await audit(page, "not-found", width)
    await context.close()
