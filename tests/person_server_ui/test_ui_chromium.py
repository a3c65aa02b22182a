"""The consent page clicked in headless Chromium (Debian's ``/usr/bin/chromium``): sign in,
read the justification, ask a question, approve; deny; expired and reused codes; wrong codes
ending the interaction; untrusted Markdown rendered inert; a request reviewed from the
dashboard. The agent side is real signed requests to the PS over loopback HTTP; its polls
see the person's decisions."""

from __future__ import annotations

from typing import Any

import httpx
from support.ps import RES, Agent, problem
from support.ui import TIMEOUT, Served, sign_in

from aauth_agents.protocol.requirement import parse_requirement


async def ask(served: Served, **body: Any) -> tuple[Agent, httpx.Response, str, str]:
    """An agent asks for a person token; returns it, the 202, the page URL and the code."""
    agent = served.world.agent()
    pending = await agent.post("/person", {"resource": RES, **body})
    assert pending.status_code == 202, pending.text
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    path = requirement.url.removeprefix("https://ps.example")
    assert path.startswith("/interact/")
    return agent, pending, served.url + path, requirement.code


async def test_sign_in_read_ask_answer_approve(served: Served, browser: Any) -> None:
    agent, pending, url, code = await ask(
        served,
        justification="I will **summarise** your notes.",
        capabilities=["interaction", "clarification"],
    )
    page = await browser.new_page()
    await page.goto(f"{url}?code={code.lower()}")  # case-insensitive
    assert await page.locator("#signin").is_visible()
    # Signed out is not engaged: the agent still sees pending.
    assert (await agent.poll(pending)).json() == {"status": "pending"}
    await sign_in(page)
    justification = page.locator("#justification")
    await justification.wait_for(timeout=TIMEOUT)
    assert "/consent/" in page.url and "code=" not in page.url
    # The agent sees the person arrived.
    assert (await agent.poll(pending)).json() == {"status": "interacting"}
    assert await justification.inner_text() == "I will summarise your notes."
    assert await page.locator("#justification strong").inner_text() == "summarise"
    assert "Example Data" in await page.locator("#resource").inner_text()
    assert await page.locator("#agent-id").inner_text() == agent.agent_id
    # Ask a question; the agent answers; the answer appears on the page.
    await page.fill("#ask textarea[name=question]", "Which notes exactly?")
    await page.click("#ask button[value=ask]")
    await page.locator("#waiting-0").wait_for(timeout=TIMEOUT)
    asked = await agent.poll(pending)
    assert asked.status_code == 202 and asked.json()["clarification"] == "Which notes exactly?"
    answered = await agent.post(
        pending.headers["location"],
        {"action": "clarification_response", "clarification_response": "Only *today's* notes."},
    )
    assert answered.status_code == 202, answered.text
    answer = page.locator("#answer-0")
    await answer.wait_for(timeout=TIMEOUT)  # the page refreshes itself while waiting
    assert await answer.inner_text() == "Only today's notes."
    assert "4 question(s) left" in await page.locator("#ask").inner_text()
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert "approved" in await page.locator("#message").inner_text()
    granted = await agent.poll(answered)
    assert granted.status_code == 200, granted.text
    await served.world.check_person_token(
        granted.json()["person_token"], agent.public, not_after=agent.exp
    )


async def test_deny(served: Served, browser: Any) -> None:
    agent, pending, url, code = await ask(served, justification="Let me in")
    page = await browser.new_page()
    await page.goto(f"{url}?code={code}")
    await sign_in(page)
    await page.click("#deny")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert "denied" in await page.locator("#message").inner_text()
    refused = await agent.poll(pending)
    assert refused.status_code == 403 and problem(refused) == "denied"


async def test_deny_redirects_to_the_agents_callback_with_the_error(
    served: Served, browser: Any
) -> None:
    agent, pending, url, code = await ask(served)
    callback = f"{served.url}/agent-callback?state=1"  # a loopback callback (a local agent)
    page = await browser.new_page()
    await page.goto(f"{url}?code={code}&callback={callback}")
    await sign_in(page)
    async with page.expect_response(lambda r: "/agent-callback" in r.url, timeout=TIMEOUT):
        await page.click("#deny")
    assert page.url == f"{served.url}/agent-callback?state=1&error=access_denied"
    assert problem(await agent.poll(pending)) == "denied"


async def test_expired_code(served: Served, browser: Any) -> None:
    agent, pending, url, code = await ask(served)
    served.world.clock.advance(601)  # past the pending request's lifetime
    page = await browser.new_page()
    response = await page.goto(f"{url}?code={code}")
    assert response is not None and response.status == 410
    assert "expired" in await page.locator("#message").inner_text()
    assert await page.locator("#error-code").inner_text() == "expired"
    polled = await agent.get(pending.headers["location"])
    assert problem(polled) == "expired"


async def test_reused_code(served: Served, browser: Any) -> None:
    """The link opens the request in any browser until the person decides; after the
    decision the code is spent (§Interaction Code Format) and the link is refused."""
    agent, pending, url, code = await ask(served)
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{url}?code={code}")
    await sign_in(page)
    await page.locator("#approve").wait_for(timeout=TIMEOUT)
    assert "/consent/" in page.url
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert (await agent.poll(pending)).status_code == 200
    # Someone else (another browser session) with the same code, after the decision.
    page2 = await (await browser.new_context()).new_page()
    response = await page2.goto(f"{url}?code={code}")
    assert response is not None and response.status == 410
    assert await page2.locator("#error-code").inner_text() == "invalid_code"
    assert not await page2.locator("#signin").count()


async def test_six_wrong_codes_end_the_interaction(served: Served, browser: Any) -> None:
    agent, pending, url, code = await ask(served)
    page = await browser.new_page()
    for n in range(6):
        response = await page.goto(f"{url}?code=WRONG-{n:04d}")
        assert response is not None and response.status == 410
        assert await page.locator("#error-code").inner_text() == "invalid_code"
        if n == 3:  # still alive after four
            assert (await agent.poll(pending)).json() == {"status": "pending"}
    # The right code no longer opens it, and the agent learns it failed.
    response = await page.goto(f"{url}?code={code}")
    assert response is not None and response.status == 410
    assert await page.locator("#error-code").inner_text() == "invalid_code"
    failed = await agent.poll(pending)
    assert problem(failed) == "invalid_code"


XSS = (
    "Hello <script>window.__xss = 1</script> "
    '<img src="x" onerror="window.__xss = 2"> '
    "[click me](javascript:window.__xss=3) "
    '<a href="javascript:window.__xss=4" onclick="window.__xss=5">raw</a> '
    "![pic](https://example.invalid/x.png)"
)


async def test_script_in_the_justification_is_inert(served: Served, browser: Any) -> None:
    agent, pending, url, code = await ask(
        served, justification=XSS, capabilities=["interaction", "clarification"]
    )
    page = await browser.new_page()
    await page.goto(f"{url}?code={code}")
    await sign_in(page)
    box = page.locator("#justification")
    await box.wait_for(timeout=TIMEOUT)
    text = await box.inner_text()
    assert "<script>window.__xss = 1</script>" in text  # shown as text, not run
    assert await page.evaluate("document.querySelectorAll('script').length") == 0
    assert (
        await page.evaluate(
            "document.querySelectorAll('#justification img, #justification [onerror],"
            " #justification [onclick]').length"
        )
        == 0
    )
    hrefs = await page.evaluate(
        "Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))"
    )
    assert not any(h and h.strip().lower().startswith("javascript:") for h in hrefs)
    handlers = await page.evaluate(
        "Array.from(document.querySelectorAll('*')).flatMap(e => Array.from(e.attributes)"
        ".map(a => a.name)).filter(n => n.startsWith('on'))"
    )
    assert handlers == []
    # Click whatever links exist in the justification: nothing runs.
    for link in await box.locator("a").all():
        await link.click(modifiers=["Control"])  # opens in a background tab, if anything
    assert await page.evaluate("window.__xss === undefined")
    # The agent's answer in the chat is untrusted too.
    await page.fill("#ask textarea[name=question]", "why?")
    await page.click("#ask button[value=ask]")
    await page.locator("#waiting-0").wait_for(timeout=TIMEOUT)
    await agent.poll(pending)
    await agent.post(
        pending.headers["location"],
        {"action": "clarification_response", "clarification_response": XSS},
    )
    await page.locator("#answer-0").wait_for(timeout=TIMEOUT)
    assert await page.evaluate("document.querySelectorAll('script, img').length") == 0
    assert await page.evaluate("window.__xss === undefined")


async def test_mission_approval_then_dashboard_terminate_and_revoke(
    served: Served, browser: Any
) -> None:
    world = served.world
    assert world.ps is not None
    agent = world.agent()
    proposed = await agent.post(
        "/mission",
        {
            "description": "# Plan a trip\n\nBook *flights* and a hotel.",
            "tools": [{"name": "WebSearch", "description": "Search the web"}],
            "resources": [RES],
        },
    )
    assert proposed.status_code == 202, proposed.text
    requirement = parse_requirement(proposed.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    page = await browser.new_page()
    await page.goto(
        served.url
        + requirement.url.removeprefix("https://ps.example")
        + f"?code={requirement.code}"
    )
    await sign_in(page)
    mission = page.locator("#mission")
    await mission.wait_for(timeout=TIMEOUT)
    assert "Plan a trip" in await mission.inner_text()
    assert await page.locator("#mission h1").inner_text() == "Plan a trip"
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    s256 = (await agent.poll(proposed)).json()["s256"]
    # The dashboard: the agent and the mission with its log.
    await page.goto(f"{served.url}/dashboard")
    assert agent.agent_id in await page.locator("#agents").inner_text()
    missions = page.locator("#missions")
    assert "Plan a trip" in await missions.inner_text()
    await page.click("#missions summary")
    assert "You approved the mission." in await missions.inner_text()
    # Ending the mission asks first.
    await page.click("#missions button:has-text('End mission')")
    await page.locator("#confirm").wait_for(timeout=TIMEOUT)
    await page.click("#do-it")
    await page.locator("#missions").wait_for(timeout=TIMEOUT)
    assert "Ended: you ended it" in await page.locator("#missions").inner_text()
    ended = await world.ps.mission(s256)
    assert ended is not None and ended.state == "terminated"
    # Disconnecting asks first; Cancel changes nothing; confirmed, the binding is gone.
    await page.click("#agents button:has-text('Disconnect')")
    await page.click("#cancel")
    assert agent.agent_id in await page.locator("#agents").inner_text()
    assert len(await world.ps.run(world.ps.state.bindings_for, "alice")) == 1
    await page.click("#agents button:has-text('Disconnect')")
    await page.click("#do-it")
    await page.locator("#no-agents").wait_for(timeout=TIMEOUT)
    assert await world.ps.run(world.ps.state.bindings_for, "alice") == []


async def test_dashboard_review_and_approve(served: Served, browser: Any) -> None:
    """A signed-in person sees a request of their agent waiting on the dashboard, reviews
    it there (no code) and approves; the agent's request completes."""
    world = served.world
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    pending = await agent.post("/person", {"resource": RES, "justification": "Weekly *report*"})
    assert pending.status_code == 202, pending.text
    page = await browser.new_page()
    await page.goto(f"{served.url}/dashboard")
    await sign_in(page)
    waiting = page.locator("#waiting li")
    await waiting.first.wait_for(timeout=TIMEOUT)
    assert await waiting.count() == 1
    assert agent.agent_id in await waiting.first.inner_text()
    await waiting.first.locator("a.review").click()
    await page.locator("#justification").wait_for(timeout=TIMEOUT)
    assert "/consent/" in page.url
    assert await page.locator("#justification").inner_text() == "Weekly report"
    await page.click("#approve")
    await page.locator("#message").wait_for(timeout=TIMEOUT)
    assert "approved" in await page.locator("#message").inner_text()
    granted = await agent.poll(pending)
    assert granted.status_code == 200, granted.text
    await world.check_person_token(
        granted.json()["person_token"], agent.public, not_after=agent.exp
    )
    await page.goto(f"{served.url}/dashboard")
    await page.locator("#nothing-waiting").wait_for(timeout=TIMEOUT)
