"""The page layer of the person's pages: errors rendered by the exception handlers the UI's
routes carry (also in a bare ``create_person_server(ps, routes=ui_routes(ps))`` app), an
unexpected error as a logged 500 page, links and forms built from route names (a moved
interact path included), autoescaped templates, and the per-kind consent table."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from support.ps import PASSWORD, PS, RES, World, make_world
from support.ui import ORIGIN, assert_page_headers, csrf, open_link, signed_in

from aauth_agents.protocol.errors import ProtocolError
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import create_person_server, person_server_of
from aauth_agents.servers.person_server.consent_view import (
    KINDS,
    consent_kind,
)
from aauth_agents.servers.person_server.kinds import KINDS as REQUEST_KINDS
from aauth_agents.servers.person_server.ui import (
    PersonServerUI,
    create_person_server_with_ui,
    ui_routes,
)
from aauth_agents.servers.person_server.ui_pages import PageError

MOVED = {"interact": "/aauth/consent"}


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)


@pytest.fixture
async def bare_app_world() -> AsyncIterator[World]:
    """The UI added to a plain ``create_person_server`` app, as the CLI and demo do."""
    w = make_world()
    ps = w.start()
    w.app = create_person_server(ps, routes=ui_routes(ps))
    w.attach(w.app)
    ps.accounts.create_account("alice", PASSWORD)
    try:
        yield w
    finally:
        await w.close()


async def test_page_errors_render_in_a_bare_person_server_app(bare_app_world: World) -> None:
    async with client(bare_app_world.app) as browser:
        no_code = await browser.get("/interact/some-id")
        assert no_code.status_code == 400
        assert 'id="error-code">invalid_code<' in no_code.text
        assert "<title>Invalid code · aauth-agents Person Server</title>" in no_code.text
        assert_page_headers(no_code)
        unknown = await browser.get("/consent/no-such-request")
        assert unknown.status_code == 404 and 'id="error-code">not_found<' in unknown.text
        assert_page_headers(unknown)
        refused = await browser.post("/signout", headers={"origin": "https://evil.example"})
        assert refused.status_code == 403 and 'id="error-code">csrf<' in refused.text


async def test_an_unexpected_error_is_a_logged_500_page(
    ui_world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ui = ui_world.app.state.person_server_ui
    assert isinstance(ui, PersonServerUI)

    def broken(*args: object) -> None:
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(ui.sessions, "create", broken)
    with caplog.at_level(logging.ERROR, logger="aauth_agents.ps.ui"):
        async with client(ui_world.app) as browser:
            response = await browser.get("/signin")
    assert response.status_code == 500
    assert 'id="error-code">server_error<' in response.text
    assert "the database is gone" not in response.text
    assert_page_headers(response)
    [record] = [r for r in caplog.records if r.name == "aauth_agents.ps.ui"]
    assert record.exc_info is not None and "GET /signin failed" in record.getMessage()


def test_page_error_of_a_protocol_error_is_never_408() -> None:
    expired = PageError.cannot_continue(ProtocolError("too late", code="expired", status=408))
    assert (expired.status, expired.code, expired.message) == (410, "expired", "too late")
    gone = PageError.cannot_continue(ProtocolError("finished", code="gone", status=410))
    assert gone.status == 410 and gone.title == "Cannot continue"


def _targets(page: httpx.Response) -> list[tuple[str, str]]:
    """(method, path) of every same-site link, stylesheet and form on ``page``."""
    found = [("GET", p) for p in re.findall(r'<(?:a|link)[^>]* href="(/[^"]*)"', page.text)]
    found += [("POST", p) for p in re.findall(r'<form method="post" action="([^"]*)"', page.text)]
    return found


async def test_links_and_forms_follow_the_routes_at_a_moved_interact_path() -> None:
    world = make_world()
    app = create_person_server_with_ui(world.config(paths=MOVED))
    world.app, world.ps = app, person_server_of(app)
    world.attach(app)
    world.ps.accounts.create_account("alice", PASSWORD)
    try:
        # The resource-initiated interaction comes back to the route of that name.
        assert PS + app.url_path_for(
            "resource_return", pending_id="p", nonce="n"
        ) == world.ps.config.url("interact", "callback", "p", "n")
        assert app.url_path_for("interact", interaction_id="i") == "/aauth/consent/i"
        agent = world.agent()
        world.ps.bind_agent(agent.agent_id, "alice")
        pending = await agent.post("/person", {"resource": RES})
        requirement = parse_requirement(pending.headers["aauth-requirement"])
        assert requirement.url is not None and requirement.url.startswith(f"{PS}/aauth/consent/")
        async with client(app) as browser:
            dashboard = await signed_in(browser)
            [review] = re.findall(r'class="review[^"]*" href="([^"]+)"', dashboard.text)
            consent = await browser.get(review)
            assert consent.status_code == 200 and 'id="approve"' in consent.text
            assert 'method="get" action="/dashboard/revoke"' in dashboard.text
            [binding] = await world.ps.run(world.ps.state.bindings_for, "alice")
            confirm = await browser.get(
                "/dashboard/revoke",
                params={"agent_iss": binding.agent_iss, "agent_id": binding.agent_id},
            )
            assert confirm.status_code == 200
            targets = set(_targets(dashboard) + _targets(consent) + _targets(confirm))
            assert ("POST", review) in targets and ("GET", "/ui.css") in targets
            assert ("POST", "/dashboard/unbind") in targets and len(targets) >= 6
            for method, path in sorted(targets):
                # Every one is a route: a page, or (a form without its token) a CSRF refusal.
                answer = await browser.request(method, path, headers={"origin": ORIGIN})
                assert answer.status_code == (200 if method == "GET" else 403), (method, path)
            approved = await browser.post(
                review,
                data={"csrf": csrf(consent), "action": "approve"},
                headers={"origin": ORIGIN},
            )
            assert approved.status_code == 303 and approved.headers["location"] == review
        assert (await agent.poll(pending)).status_code == 200
    finally:
        await world.close()


async def test_templates_escape_what_they_show(ui_world: World) -> None:
    """A sign-in ``next`` and a login hint are attribute values: escaped, quotes too."""
    async with client(ui_world.app) as browser:
        page = await browser.get("/signin", params={"next": '/x"><script>alert(1)</script>'})
        assert page.status_code == 200
        assert 'value="/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text
        assert "<script" not in page.text
        wrong = await browser.post(
            "/signin",
            data={"csrf": csrf(page), "username": "<b>'x'</b>", "password": "nope", "next": "/"},
            headers={"origin": ORIGIN},
        )
        assert wrong.status_code == 401
        assert 'value="&lt;b&gt;&#39;x&#39;&lt;/b&gt;"' in wrong.text
        # None renders as nothing: no hint, an empty value.
        assert 'autocomplete="username" value="" required' in page.text


def test_the_consent_page_of_each_kind_comes_from_its_class() -> None:
    assert (
        set(KINDS)
        == set(REQUEST_KINDS)
        == {
            "person_token",
            "auth_token",
            "mission",
            "mission_update",
            "mission_completion",
            "permission",
            "question",
            "relay",
        }
    )
    for kind in ("permission", "mission_update", "mission_completion", "relay", "question"):
        assert consent_kind(kind).shows_details
    assert consent_kind("question").asks_answer
    assert consent_kind("auth_token").narrows_scopes
    assert not any(consent_kind(k).shows_details for k in ("person_token", "auth_token", "mission"))
    assert not any(consent_kind(k).asks_answer for k in set(KINDS) - {"question"})
    with pytest.raises(ProtocolError):
        consent_kind("no_such_kind")


async def test_a_question_from_the_agent_is_answered_on_the_consent_page(ui_world: World) -> None:
    agent = ui_world.agent()
    asked = await agent.post("/interaction", {"type": "question", "question": "Refundable *fare*?"})
    assert asked.status_code == 202, asked.text
    requirement = parse_requirement(asked.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    async with client(ui_world.app) as browser:
        opened = await open_link(browser, requirement.url.removeprefix(PS), code=requirement.code)
        consent = opened.headers["location"]
        page = await signed_in(browser, consent)
        assert "Example Agents</span> has a question for you</h1>" in page.text
        assert (
            '<tr><th scope="row">Question</th><td><p>Refundable <em>fare</em>?</p>\n</td></tr>'
            in page.text
        )
        assert '<textarea id="answer" name="answer" rows="3" maxlength="2000">' in page.text
        assert ">Send answer</button>" in page.text
        answered = await browser.post(
            consent,
            data={"csrf": csrf(page), "action": "approve", "answer": "Yes, refundable."},
            headers={"origin": ORIGIN},
        )
        assert answered.status_code == 303
    polled = await agent.poll(asked)
    assert polled.status_code == 200 and polled.json() == {"answer": "Yes, refundable."}
