"""The dashboard's "Waiting for you" list and its Review links, and browser sessions kept in
the PS database: across a restart, expiry, the ``max_sessions`` bound, and never the raw id
on disk. httpx against the ASGI app; the agents sign real requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from support.ps import AP_CALLBACK, DOCS, RES, World, make_world, problem
from support.ui import ORIGIN, client, csrf, open_link, signed_in, start_ui, waiting_ids

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import person_server_of
from aauth_agents.servers.person_server.database import open_database
from aauth_agents.servers.person_server.ui import COOKIE, create_person_server_with_ui
from aauth_agents.servers.person_server.ui_sessions import UISessions, session_key


async def bound_agent_asks(world: World, **body: Any) -> tuple[Any, httpx.Response]:
    """An agent bound to alice asks for a person token; the request waits for alice."""
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    pending = await agent.post("/person", {"resource": RES, **body})
    assert pending.status_code == 202, pending.text
    return agent, pending


async def test_dashboard_lists_what_waits_and_review_approves(ui_world: World) -> None:
    assert ui_world.ps is not None
    agent, pending = await bound_agent_asks(ui_world, justification="for the report")
    pending_id = pending.headers["location"].rsplit("/", 1)[1]
    # An auth token request too: its scope is shown.
    person = await agent.post("/person", {"resource": DOCS})
    view = await ui_world.ps.interactions.lookup(*_link(person))
    await ui_world.ps.interactions.approve(view.id, "alice")
    token = (await agent.poll(person)).json()["person_token"]
    rt = await ui_world.docs.resource_token(token, agent.public, "docs.read")
    docs_pending = await agent.post("/token", {"resource_token": rt})
    assert docs_pending.status_code == 202, docs_pending.text
    # A new agent's request belongs to nobody yet: it is not listed.
    stranger = await ui_world.agent("stranger").post("/person", {"resource": RES})
    assert stranger.status_code == 202
    async with client(ui_world) as alice:
        page = await signed_in(alice)
        ids = waiting_ids(page)
        assert ids[0] == pending_id and len(ids) == 2
        item = page.text[page.text.index(f'data-pending="{pending_id}"') :]
        item = item[: item.index("</li>")]
        assert agent.agent_id in item and "Example Data" in item and RES in item
        assert "wants to sign in as you at" in item
        assert '<time datetime="2024-10-29T16:00:00Z">29 Oct 2024, 16:00 UTC</time>' in item
        assert f'href="/consent/{pending_id}"' in item
        docs_item = page.text[page.text.index(f'data-pending="{ids[1]}"') :]
        docs_item = docs_item[: docs_item.index("</li>")]
        assert 'It asks to: Read docs <code class="scope muted">docs.read</code>' in docs_item
        # Review: the consent page without the code.
        consent = await alice.get(f"/consent/{pending_id}")
        assert consent.status_code == 200 and 'id="approve"' in consent.text
        assert "for the report" in consent.text
        approved = await alice.post(
            f"/consent/{pending_id}",
            data={"csrf": csrf(consent), "action": "approve"},
            headers={"origin": ORIGIN},
        )
        assert approved.status_code == 303
        done = await agent.poll(pending)
        assert done.status_code == 200, done.text
        # Finished requests leave the list; expired ones too.
        assert waiting_ids(await alice.get("/dashboard")) == [ids[1]]
        ui_world.clock.advance(601)
        after = await alice.get("/dashboard")
        assert waiting_ids(after) == [] and 'id="nothing-waiting"' in after.text


def _link(pending: httpx.Response) -> tuple[str, str]:
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    return requirement.url.rsplit("/", 1)[1], requirement.code


async def test_only_the_owner_opens_a_request_without_its_code(ui_world: World) -> None:
    agent, pending = await bound_agent_asks(ui_world)
    pending_id = pending.headers["location"].rsplit("/", 1)[1]
    async with client(ui_world) as bob, client(ui_world) as anonymous:
        await signed_in(bob, username="bob")
        assert waiting_ids(await bob.get("/dashboard")) == []
        not_yours = await bob.get(f"/consent/{pending_id}")
        missing = await bob.get("/consent/no-such-request")
        assert not_yours.status_code == missing.status_code == 404
        assert not_yours.text == missing.text  # "not yours" and "does not exist" alike
        page = await bob.get("/dashboard")
        refused = await bob.post(
            f"/consent/{pending_id}",
            data={"csrf": csrf(page), "action": "approve"},
            headers={"origin": ORIGIN},
        )
        assert refused.status_code == 404
        assert (await anonymous.get(f"/consent/{pending_id}")).status_code == 404
    assert (await agent.poll(pending)).json() == {"status": "pending"}


async def test_prompt_login_from_the_dashboard_asks_to_sign_in_again(ui_world: World) -> None:
    agent, pending = await bound_agent_asks(ui_world, prompt="login")
    pending_id = pending.headers["location"].rsplit("/", 1)[1]
    async with client(ui_world) as alice:
        await signed_in(alice)
        page = await alice.get(f"/consent/{pending_id}")
        assert 'id="signin"' in page.text and 'id="approve"' not in page.text
        again = await signed_in(alice, f"/consent/{pending_id}")
        assert 'id="approve"' in again.text
        await alice.post(
            f"/consent/{pending_id}",
            data={"csrf": csrf(again), "action": "deny"},
            headers={"origin": ORIGIN},
        )
    assert problem(await agent.poll(pending)) == "denied"


# -- sessions in the database ------------------------------------------------------------------


async def test_a_restart_keeps_the_browser_signed_in_and_its_request(tmp_path: Path) -> None:
    world = make_world()
    start_ui(world, database=tmp_path)
    try:
        agent = world.agent()  # a new agent: only the code opens its request
        pending = await agent.post("/person", {"resource": RES})
        url, code = _link(pending)
        async with client(world) as browser:
            opened = await open_link(browser, f"/interact/{url}", code=code, callback=AP_CALLBACK)
            consent = opened.headers["location"]
            page = await signed_in(browser, consent)
            assert 'id="approve"' in page.text
            sid = browser.cookies[COOKIE]
        # The raw id is nowhere on disk; its hash is.
        files = [p for p in tmp_path.iterdir() if p.is_file()]
        assert files and not any(sid.encode() in p.read_bytes() for p in files)
        assert world.ps is not None
        assert world.ps.db.fetchone(
            "SELECT account FROM ps_ui_sessions WHERE id_s256 = ?", (session_key(sid),)
        ) == ("alice",)
        await world.ps.aclose()
        # The PS comes back on the same file.
        app = create_person_server_with_ui(world.config(database=tmp_path))
        world.app, world.ps = app, person_server_of(app)
        world.attach(app)
        async with client(world, {COOKIE: sid}) as browser:
            page = await browser.get(consent)
            assert page.status_code == 200 and 'id="approve"' in page.text
            assert "Signed in as <b>alice</b>" in page.text
            approved = await browser.post(
                consent, data={"csrf": csrf(page), "action": "approve"}, headers={"origin": ORIGIN}
            )
            assert approved.status_code == 303
            assert approved.headers["location"] == AP_CALLBACK  # the callback survived too
        done = await agent.poll(pending)
        assert done.status_code == 200, done.text
        assert not any(sid.encode() in p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    finally:
        await world.close()


async def test_sessions_slide_and_then_expire(ui_world: World) -> None:
    ui = ui_world.app.state.person_server_ui
    async with client(ui_world) as alice:
        page = await signed_in(alice)
        for _ in range(3):  # each visit moves the expiry on
            ui_world.clock.advance(ui.session_ttl - 1)
            assert (await alice.get("/dashboard")).status_code == 200
        ui_world.clock.advance(ui.session_ttl + 1)
        assert (await alice.get("/dashboard")).status_code == 303
        refused = await alice.post(
            "/signout", data={"csrf": csrf(page)}, headers={"origin": ORIGIN}
        )
        assert refused.status_code == 403
    assert ui.sessions.count() == 0


@pytest.mark.parametrize("path", [":memory:", "file", "postgres"])
def test_session_store_bound_rotation_and_sign_out(
    tmp_path: Path, path: str, request: pytest.FixtureRequest
) -> None:
    location = {"file": tmp_path / "ps.sqlite3", ":memory:": ":memory:"}.get(path)
    db = open_database(location or request.getfixturevalue("postgres_url"))
    sessions = UISessions(db)
    now, ttl = 1000.0, 60.0
    first = sessions.create(now, ttl, 2)
    sessions.link(first, "p1", now, interaction_id="i1", callback="http://localhost/cb")
    second = sessions.create(now + 1, ttl, 2)
    assert sessions.load(first.id, now + 2, ttl) is not None  # first is now the newer one
    third = sessions.create(now + 3, ttl, 2)
    assert sessions.count() == 2
    assert sessions.load(second.id, now + 3, ttl) is None  # least recently used: dropped
    assert sessions.load(third.id, now + 3, ttl) is not None
    # Sign-in rotates the id and keeps the links; the old id is worthless.
    signed = sessions.sign_in(first, "alice", now + 4, ttl, 2)
    assert signed.id != first.id and signed.csrf != first.csrf
    assert sessions.load(first.id, now + 4, ttl) is None
    loaded = sessions.load(signed.id, now + 4, ttl)
    assert loaded is not None and loaded.account == "alice" and loaded.login_seq == 1
    assert loaded.owns("p1") and loaded.callbacks == {"p1": "http://localhost/cb"}
    assert loaded.arrived == {"p1": 0}
    sessions.delete(loaded)
    assert sessions.load(signed.id, now + 4, ttl) is None
    assert db.fetchone("SELECT COUNT(*) FROM ps_ui_session_links") == (0,)
    # A full store drops anonymous sessions before signed-in ones, however recent.
    person = sessions.sign_in(sessions.create(now + 5, ttl, 2), "bob", now + 5, ttl, 2)
    for n in range(5):
        sessions.create(now + 6 + n, ttl, 2)
    assert sessions.count() == 2
    assert sessions.load(person.id, now + 20, ttl) is not None
    db.close()
