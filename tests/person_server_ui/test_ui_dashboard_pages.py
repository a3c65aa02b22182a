"""The dashboard as the person reads it: each agent with what it may do at which site and
until when, missions with their log in words; disconnecting an agent and ending a mission
ask first (the confirmation page changes nothing, cancelling changes nothing, only the
confirmed POST does); ``GET /`` says what the server is and where to go. httpx against the
ASGI app; the agents sign real requests."""

from __future__ import annotations

import re

import httpx
from support.ps import DOCS, RES, Agent, World, make_world
from support.ui import ORIGIN, assert_page_headers, client, csrf, signed_in, start_ui

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server.dashboard_view import log_line, mission_state
from aauth_agents.servers.person_server.kinds import KINDS, Terms, duration_words, kind_of
from aauth_agents.servers.person_server.pending import PendingRequest
from aauth_agents.servers.person_server.policy import ResourceInfo
from aauth_agents.servers.person_server.state import Mission, MissionLogEntry


async def approved(world: World, agent: Agent, pending: httpx.Response) -> httpx.Response:
    assert world.ps is not None
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    await world.ps.interactions.approve(view.id, "alice")
    done = await agent.poll(pending)
    assert done.status_code == 200, done.text
    return done


async def agent_with_access(world: World) -> Agent:
    """Alice's agent, signed in at DOCS (remembered) and holding ``docs.read`` there."""
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    person = await approved(world, agent, await agent.post("/person", {"resource": DOCS}))
    rt = await world.docs.resource_token(person.json()["person_token"], agent.public, "docs.read")
    await approved(world, agent, await agent.post("/token", {"resource_token": rt}))
    return agent


def section(page: httpx.Response, element_id: str) -> str:
    """The ``<section>`` holding the element ``element_id``."""
    start = page.text.index(f'id="{element_id}"')
    return page.text[start : page.text.index("</section>", start)]


async def test_the_dashboard_shows_each_agents_grants_per_site(ui_world: World) -> None:
    agent = await agent_with_access(ui_world)
    async with client(ui_world) as alice:
        page = await signed_in(alice)
    agents = section(page, "agents")
    assert "<h3>Example Agents</h3>" in agents and agent.agent_id in agents
    # What alice allowed, per site, in words, with the scope's description.
    assert "May sign in as you at <b>Docs</b>" in agents
    assert "May use <b>Docs</b>" in agents
    assert 'Read docs <code class="muted">docs.read</code>' in agents
    # What it holds now, and until when (the auth token's lifetime: one hour).
    assert re.search(
        r'Has access to <b>Docs</b> \(<code>docs\.read</code>\) until <time datetime="'
        r'2024-10-29T17:00:0\dZ">29 Oct 2024, 17:00 UTC</time>',
        agents,
    ), agents
    # Another person sees none of it.
    async with client(ui_world) as bob:
        theirs = await signed_in(bob, username="bob")
    assert 'id="no-agents"' in theirs.text and agent.agent_id not in theirs.text


async def test_disconnecting_an_agent_asks_first(ui_world: World) -> None:
    assert ui_world.ps is not None
    ps = ui_world.ps
    agent = await agent_with_access(ui_world)
    [binding] = await ps.run(ps.state.bindings_for, "alice")
    query = {"agent_iss": binding.agent_iss, "agent_id": binding.agent_id}
    async with client(ui_world) as alice:
        dashboard = await signed_in(alice)
        # The dashboard's button is a GET form to the confirmation page.
        assert 'form method="get" action="/dashboard/revoke"' in dashboard.text
        confirm = await alice.get("/dashboard/revoke", params=query)
        assert confirm.status_code == 200
        assert_page_headers(confirm)
        assert "<h1>Disconnect Example Agents?</h1>" in confirm.text
        assert f'<p class="muted" id="about">Agent {agent.agent_id}, from' in confirm.text
        assert "no longer be able to act for you" in confirm.text
        assert 'action="/dashboard/unbind"' in confirm.text
        # Asking changed nothing, and cancelling goes back without a change.
        [cancel] = re.findall(
            r'<a class="button secondary" href="([^"]+)" id="cancel"', confirm.text
        )
        assert cancel == "/dashboard"
        assert (await alice.get(cancel)).status_code == 200
        assert await ps.run(ps.state.bindings_for, "alice") == [binding]
        live = await ps.run(ps.state.live_auth_tokens_for_agent, agent.agent_id, 0)
        assert live and all(t.revoked_at is None for t in live)
        # Without the form's CSRF token, the POST is refused and nothing changes.
        refused = await alice.post("/dashboard/unbind", data=query, headers={"origin": ORIGIN})
        assert refused.status_code == 403
        assert await ps.run(ps.state.bindings_for, "alice") == [binding]
        # Confirmed: the binding, what it was allowed and its access are gone.
        done = await alice.post(
            "/dashboard/unbind", data={**query, "csrf": csrf(confirm)}, headers={"origin": ORIGIN}
        )
        assert done.status_code == 303 and done.headers["location"] == "/dashboard"
        after = await alice.get("/dashboard")
    assert await ps.run(ps.state.bindings_for, "alice") == []
    assert await ps.run(ps.state.consents_for, "alice") == []
    revoked = await ps.run(ps.state.auth_tokens_for_account, "alice")
    assert revoked and all(t.revoked_at is not None for t in revoked)
    assert 'id="no-agents"' in after.text


async def test_confirmation_pages_are_for_the_owner_only(ui_world: World) -> None:
    assert ui_world.ps is not None
    await agent_with_access(ui_world)
    [binding] = await ui_world.ps.run(ui_world.ps.state.bindings_for, "alice")
    query = {"agent_iss": binding.agent_iss, "agent_id": binding.agent_id}
    async with client(ui_world) as anonymous:
        signin = await anonymous.get("/dashboard/revoke", params=query)
        assert signin.status_code == 303
        assert signin.headers["location"] == "/signin?next=/dashboard"
    async with client(ui_world) as bob:
        await signed_in(bob, username="bob")
        for path, params in (
            ("/dashboard/revoke", query),
            ("/dashboard/revoke", {"agent_iss": "https://x.example", "agent_id": "nobody"}),
            ("/dashboard/end", {"s256": "no-such-mission"}),
        ):
            refused = await bob.get(path, params=params)
            assert refused.status_code == 404 and 'id="error-code">not_found<' in refused.text
    assert await ui_world.ps.run(ui_world.ps.state.bindings_for, "alice") == [binding]


async def test_ending_a_mission_asks_first_and_the_log_reads_as_words(ui_world: World) -> None:
    assert ui_world.ps is not None
    agent = ui_world.agent()
    ui_world.ps.bind_agent(agent.agent_id, "alice")
    proposed = await agent.post("/mission", {"description": "Plan a *trip*", "resources": [RES]})
    s256 = (await approved(ui_world, agent, proposed)).json()["s256"]
    async with client(ui_world) as alice:
        dashboard = await signed_in(alice)
        missions = section(dashboard, "missions")
        assert '<b class="mission-state">Active</b>' in missions
        assert "You approved the mission." in missions
        confirm = await alice.get("/dashboard/end", params={"s256": s256})
        assert "<h1>End this mission?</h1>" in confirm.text
        assert "<p>Plan a <em>trip</em></p>" in confirm.text
        mission = await ui_world.ps.mission(s256)
        assert mission is not None and mission.state == "active"  # asking changed nothing
        done = await alice.post(
            "/dashboard/terminate",
            data={"s256": s256, "csrf": csrf(confirm)},
            headers={"origin": ORIGIN},
        )
        assert done.status_code == 303
        after = section(await alice.get("/dashboard"), "missions")
    assert '<b class="mission-state">Ended: you ended it</b>' in after
    assert "The mission ended: you ended it." in after
    assert "End mission" not in after
    mission = await ui_world.ps.mission(s256)
    assert mission is not None and mission.state == "terminated"


async def test_home_says_what_the_server_is_and_where_to_go() -> None:
    world = make_world()
    start_ui(world, name="Alice's <home> server")
    try:
        async with client(world) as browser:
            home = await browser.get("/")
            assert home.status_code == 200
            assert_page_headers(home)
            assert "<h1>Alice&#39;s &lt;home&gt; server</h1>" in home.text
            assert '<code id="server-id">https://ps.example</code>' in home.text
            assert 'href="/signin?next=/dashboard" id="go-signin"' in home.text
            words = re.sub(r"<[^>]+>", " ", home.text).lower()
            for jargon in ("token", "interaction", "issuer", "scope", "protocol"):
                assert jargon not in words, jargon
            signin = await browser.get("/signin")
            assert "<h1>Sign in to Alice&#39;s &lt;home&gt; server</h1>" in signin.text
            signed = await signed_in(browser, "/")
            assert 'href="/dashboard" id="go-dashboard"' in signed.text
            assert "Signed in as <b>alice</b>" in signed.text
            assert (await browser.post("/", headers={"origin": ORIGIN})).status_code == 405
    finally:
        await world.close()


def test_each_kind_says_what_the_agent_wants_and_what_approving_allows() -> None:
    terms = Terms(person_token=900, auth_token=600, mission=2 * 86400)
    for name, kind in KINDS.items():
        req = PendingRequest(
            kind=name,
            agent_iss="https://ap.example",
            agent_id="aauth:a@ap.example",
            subject_jwk={},
            requirement="",
            request={"resource": "https://r.example", "action": "pay", "type": "payment"},
            resource=ResourceInfo("https://r.example", name="Photos"),
        )
        page = kind.describe(req, terms)
        assert page.wants.verb and page.allows, name
        assert not any(word in " ".join(page.allows) for word in ("token", "scope")), name
    auth = kind_of("auth_token").describe(
        PendingRequest(
            kind="auth_token",
            agent_iss="https://ap.example",
            agent_id="aauth:a@ap.example",
            subject_jwk={},
            requirement="",
            request={"resource": "https://r.example", "scopes": ["read"]},
            resource=ResourceInfo("https://r.example", name="Photos"),
        ),
        terms,
    )
    assert (auth.wants.verb, auth.wants.target) == ("wants access to", "Photos")
    assert any("up to 10 minutes at a time" in line for line in auth.allows)
    assert [duration_words(s) for s in (1, 59, 60, 3600, 7200, 86400)] == [
        "1 second",
        "59 seconds",
        "1 minute",
        "1 hour",
        "2 hours",
        "1 day",
    ]


def test_mission_log_entries_and_states_in_words() -> None:
    def entry(kind: str, data: str) -> MissionLogEntry:
        return MissionLogEntry(1, 1730217600.0, kind, data.encode(), None)

    line = log_line(entry("permission_response", '{"action":"pay","permission":"denied"}'))
    assert line.words == "Permission to pay: denied."
    asked = log_line(entry("clarification_question", '{"question":"Why *now*?"}'))
    assert (asked.words, asked.detail) == ("You asked the agent a question.", "Why *now*?")
    assert log_line(entry("auth_token", "{}")).words == "Was given access to ?."
    assert log_line(entry("something_new", "[1]")).words == "Something new"
    mission = Mission(
        "s", "https://ap.example", "a", "alice", b"{}", "active", None, 100.0, (), None, 0.0
    )
    assert mission_state(mission, 50) == "Active"
    assert mission_state(mission, 150) == "Ended: it expired"
    ended = Mission("s", "i", "a", "alice", b"{}", "terminated", "completed", None, (), None, 0)
    assert mission_state(ended, 0) == "Ended: done"
