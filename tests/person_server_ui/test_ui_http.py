"""The person's pages without a browser (httpx against the ASGI app): CSRF refusals, security
headers, sessions, sign-in, callbacks, the dashboard's revoke and terminate."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from support.ps import AP, AP_CALLBACK, PASSWORD, PS, RES, World, make_world, problem
from support.ui import ORIGIN, csrf, open_link, signed_in, start_ui

from aauth_agents.agent.provider import LocalAgentProvider
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol.metadata import AgentProviderMetadata
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server.ui import COOKIE
from aauth_agents.tokens import peek


@pytest.fixture
async def browser(ui_world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client playing the person's browser (plain http on loopback), one
    that has been to the PS before: it holds an (anonymous) session, so an interaction link
    redirects it to the consent page (test_ui_links.py has the browser without one)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ui_world.app), base_url=ORIGIN
    ) as client:
        await client.get("/signin")
        yield client


async def open_interaction(
    world: World, client: httpx.AsyncClient, **body: object
) -> tuple[httpx.Response, httpx.Response, str]:
    """The agent asks; the person's browser opens the link. Returns the agent's 202, the
    browser's response and the consent page path."""
    agent = world.agent()
    pending = await agent.post("/person", {"resource": RES, **body})
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    path = requirement.url.removeprefix("https://ps.example")
    page = await open_link(client, f"{path}?code={requirement.code}")
    return pending, page, page.headers["location"]


async def test_security_headers_on_every_page(ui_world: World, browser: httpx.AsyncClient) -> None:
    _, redirect, consent = await open_interaction(ui_world, browser)
    for response in (
        redirect,
        await browser.get(consent),
        await browser.get("/signin"),
        await browser.get("/interact/nope?code=x"),
    ):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_session_cookie_attributes(ui_world: World, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/signin")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ui_world.app), base_url="https://ps.example"
    ) as https:
        assert "Secure" in (await https.get("/signin")).headers["set-cookie"]


async def test_session_id_rotates_on_sign_in(ui_world: World, browser: httpx.AsyncClient) -> None:
    await browser.get("/signin")
    before = browser.cookies[COOKIE]
    page = await signed_in(browser)
    assert page.status_code == 200 and "Signed in as <b>alice</b>" in page.text
    assert browser.cookies[COOKIE] != before
    # The old id is worthless now.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ui_world.app), base_url=ORIGIN, cookies={COOKIE: before}
    ) as stale:
        assert (await stale.get("/dashboard")).status_code == 303


async def test_wrong_password(ui_world: World, browser: httpx.AsyncClient) -> None:
    form = await browser.get("/signin")
    response = await browser.post(
        "/signin",
        data={"csrf": csrf(form), "username": "alice", "password": "nope", "next": "/dashboard"},
        headers={"origin": ORIGIN},
    )
    assert response.status_code == 401 and 'id="signin-error"' in response.text
    assert (await browser.get("/dashboard")).status_code == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/page"},
        {},
    ],
)
async def test_post_from_another_origin_is_refused(
    ui_world: World, browser: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    _pending, _, consent = await open_interaction(ui_world, browser)
    await signed_in(browser, consent)
    page = await browser.get(consent)
    response = await browser.post(
        consent, data={"csrf": csrf(page), "action": "deny"}, headers=headers
    )
    assert response.status_code == 403 and 'id="error-code">csrf<' in response.text
    view = await ui_world.ps.interactions.get(consent.rsplit("/", 1)[1])  # type: ignore[union-attr]
    assert view is not None and view.state == "interacting"


async def test_post_without_or_with_a_wrong_csrf_token_is_refused(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    _pending, _, consent = await open_interaction(ui_world, browser)
    await signed_in(browser, consent)
    for data in ({"action": "approve"}, {"action": "approve", "csrf": "x" * 43}):
        response = await browser.post(consent, data=data, headers={"origin": ORIGIN})
        assert response.status_code == 403
    # Referer of the same origin is enough when Origin is absent; the real token works.
    page = await browser.get(consent)
    response = await browser.post(
        consent,
        data={"csrf": csrf(page), "action": "approve"},
        headers={"referer": f"{ORIGIN}{consent}"},
    )
    assert response.status_code == 303


async def test_consent_page_belongs_to_the_browser_that_opened_the_link(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    _, _, consent = await open_interaction(ui_world, browser)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ui_world.app), base_url=ORIGIN
    ) as other:
        await signed_in(other, "/dashboard", "bob")
        assert (await other.get(consent)).status_code == 404


async def test_approve_needs_sign_in_and_code_is_not_in_the_consent_url(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    _pending, _redirect, consent = await open_interaction(ui_world, browser)
    assert "code" not in consent
    page = await browser.get(consent)
    assert 'id="signin"' in page.text and 'id="approve"' not in page.text
    response = await browser.post(
        consent, data={"csrf": csrf(page), "action": "approve"}, headers={"origin": ORIGIN}
    )
    assert response.status_code == 303 and response.headers["location"] == consent
    # Nobody signed in has engaged yet: the agent still sees pending, the code is unspent.
    view = await ui_world.ps.interactions.get(consent.rsplit("/", 1)[1])  # type: ignore[union-attr]
    assert view is not None and view.state == "pending"
    page = await signed_in(browser, consent)
    assert 'id="approve"' in page.text
    view = await ui_world.ps.interactions.get(view.id)
    assert view is not None and view.state == "interacting"


async def test_code_is_hyphen_and_case_insensitive(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    agent = ui_world.agent()
    pending = await agent.post("/person", {"resource": RES})
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    path = requirement.url.removeprefix("https://ps.example")
    loose = requirement.code.replace("-", "").lower()
    assert (await browser.get(f"{path}?code={loose}")).status_code == 303


async def test_callback_on_approve(ui_world: World, browser: httpx.AsyncClient) -> None:
    agent = ui_world.agent()
    pending = await agent.post("/person", {"resource": RES})
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    path = requirement.url.removeprefix("https://ps.example")
    opened = await browser.get(
        path, params={"code": requirement.code, "callback": f"{AP_CALLBACK}?x=1"}
    )
    consent = opened.headers["location"]
    page = await signed_in(browser, consent)
    assert f"form-action 'self' {AP}" in page.headers["content-security-policy"]
    response = await browser.post(
        consent, data={"csrf": csrf(page), "action": "approve"}, headers={"origin": ORIGIN}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{AP_CALLBACK}?x=1"
    assert (await agent.poll(pending)).status_code == 200


@pytest.mark.parametrize(
    "callback",
    [
        "javascript:alert(1)",
        "https://agent.example/cb?x=1",  # not the provider's callback_endpoint
        f"{AP_CALLBACK}/",
        f"{AP_CALLBACK}#frag",
        "https://evil.example@agents.example/callback",
        "http://localhost.evil.example/cb",
    ],
)
async def test_a_callback_the_provider_does_not_publish_is_refused(
    ui_world: World, browser: httpx.AsyncClient, callback: str
) -> None:
    """§User Interaction: the callback is built from the provider's ``callback_endpoint``;
    anything else is ``invalid_request`` -- no redirect there, and the code is not spent."""
    agent = ui_world.agent()
    pending = await agent.post("/person", {"resource": RES})
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    path = requirement.url.removeprefix("https://ps.example")
    refused = await browser.get(path, params={"code": requirement.code, "callback": callback})
    assert refused.status_code == 400 and "location" not in refused.headers
    assert 'id="error-code">invalid_request<' in refused.text
    assert (await agent.poll(pending)).json() == {"status": "pending"}
    # The same link without the callback still opens the request; a denial then shows the
    # completion page.
    opened = await browser.get(path, params={"code": requirement.code})
    consent = opened.headers["location"]
    page = await signed_in(browser, consent)
    denied = await browser.post(
        consent, data={"csrf": csrf(page), "action": "deny"}, headers={"origin": ORIGIN}
    )
    assert denied.headers["location"] == consent
    assert problem(await agent.poll(pending)) == "denied"


async def test_no_callbacks_when_the_provider_publishes_none() -> None:
    """A provider without ``callback_endpoint`` or ``localhost_callback_allowed``: even a
    loopback callback is refused."""
    world = make_world()
    world.ap = LocalAgentProvider(AP, world.ap.key, ps=PS, clock=world.clock)
    start_ui(world)
    try:
        agent = world.agent()
        pending = await agent.post("/person", {"resource": RES})
        requirement = parse_requirement(pending.headers["aauth-requirement"])
        assert requirement.url is not None and requirement.code is not None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=world.app), base_url=ORIGIN
        ) as client:
            for callback in (AP_CALLBACK, "http://127.0.0.1:8080/cb"):
                refused = await client.get(
                    requirement.url.removeprefix(PS),
                    params={"code": requirement.code, "callback": callback},
                )
                assert refused.status_code == 400, callback
    finally:
        await world.close()


async def test_sign_out(ui_world: World, browser: httpx.AsyncClient) -> None:
    page = await signed_in(browser)
    response = await browser.post("/signout", data={"csrf": csrf(page)}, headers={"origin": ORIGIN})
    assert response.status_code == 200
    assert (await browser.get("/dashboard")).status_code == 303


async def test_dashboard_revokes_an_agent(ui_world: World, browser: httpx.AsyncClient) -> None:
    assert ui_world.ps is not None
    agent = ui_world.agent()
    _pending, _, consent = await open_interaction(ui_world, browser, justification="hi")
    page = await signed_in(browser, consent)
    await browser.post(
        consent, data={"csrf": csrf(page), "action": "approve"}, headers={"origin": ORIGIN}
    )
    dashboard = await browser.get("/dashboard")
    assert dashboard.status_code == 200
    bound = await ui_world.ps.run(ui_world.ps.state.bindings_for, "alice")
    assert len(bound) == 1 and bound[0].agent_id in dashboard.text
    # bob cannot revoke alice's agent.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ui_world.app), base_url=ORIGIN
    ) as bob:
        bob_page = await signed_in(bob, "/dashboard", "bob")
        refused = await bob.post(
            "/dashboard/unbind",
            data={
                "csrf": csrf(bob_page),
                "agent_iss": bound[0].agent_iss,
                "agent_id": bound[0].agent_id,
            },
            headers={"origin": ORIGIN},
        )
        assert refused.status_code == 404
    revoked = await browser.post(
        "/dashboard/unbind",
        data={
            "csrf": csrf(dashboard),
            "agent_iss": bound[0].agent_iss,
            "agent_id": bound[0].agent_id,
        },
        headers={"origin": ORIGIN},
    )
    assert revoked.status_code == 303
    assert await ui_world.ps.run(ui_world.ps.state.bindings_for, "alice") == []
    assert 'id="no-agents"' in (await browser.get("/dashboard")).text
    del agent


async def test_dashboard_requires_sign_in(ui_world: World, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/dashboard"


async def test_open_redirect_after_sign_in_is_refused(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    form = await browser.get("/signin")
    response = await browser.post(
        "/signin",
        data={
            "csrf": csrf(form),
            "username": "alice",
            "password": PASSWORD,
            "next": "//evil.example/",
        },
        headers={"origin": ORIGIN},
    )
    assert response.headers["location"] == "/dashboard"


async def test_prompt_login_signs_the_person_in_again(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    await signed_in(browser)
    _, _, consent = await open_interaction(ui_world, browser, prompt="login", login_hint="alice")
    page = await browser.get(consent)
    assert 'id="signin"' in page.text and 'id="approve"' not in page.text
    assert 'value="alice"' in page.text  # the login hint prefills the username
    page = await signed_in(browser, consent)
    assert 'id="approve"' in page.text


async def test_scope_descriptions_and_resource_description_are_markdown(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    assert ui_world.ps is not None
    agent = ui_world.agent()
    ui_world.ps.bind_agent(agent.agent_id, "alice")
    person = await agent.post("/person", {"resource": RES})
    view = await ui_world.ps.interactions.lookup(*_link(person))
    await ui_world.ps.interactions.approve(view.id, "alice")
    token = (await agent.poll(person)).json()["person_token"]
    rt = await ui_world.resource.resource_token(token, agent.public, "data.read data.write")
    pending = await agent.post(
        "/token", {"resource_token": rt, "justification": "<b>sync</b> *now*"}
    )
    assert pending.status_code == 202, pending.text
    url, code = _link(pending)
    opened = await browser.get(f"/interact/{url}?code={code}")
    page = await signed_in(browser, opened.headers["location"])
    assert "<strong>Example</strong> stores your documents." in page.text
    assert "Read your documents" in page.text and "Change your documents" in page.text
    assert "&lt;b&gt;sync&lt;/b&gt; <em>now</em>" in page.text


def _link(response: httpx.Response) -> tuple[str, str]:
    requirement = parse_requirement(response.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    return requirement.url.rsplit("/", 1)[1], requirement.code


async def test_deny_needs_sign_in_too(ui_world: World, browser: httpx.AsyncClient) -> None:
    _, _, consent = await open_interaction(ui_world, browser)
    page = await browser.get(consent)
    response = await browser.post(
        consent, data={"csrf": csrf(page), "action": "deny"}, headers={"origin": ORIGIN}
    )
    assert response.status_code == 303 and response.headers["location"] == consent
    view = await ui_world.ps.interactions.get(consent.rsplit("/", 1)[1])  # type: ignore[union-attr]
    assert view is not None and view.state == "pending"


async def _auth_token_consent(
    world: World, client: httpx.AsyncClient
) -> tuple[object, httpx.Response, str, httpx.Response]:
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    person = await agent.post("/person", {"resource": RES})
    view = await world.ps.interactions.lookup(*_link(person))
    await world.ps.interactions.approve(view.id, "alice")
    token = (await agent.poll(person)).json()["person_token"]
    rt = await world.resource.resource_token(token, agent.public, "data.read data.write")
    pending = await agent.post("/token", {"resource_token": rt})
    url, code = _link(pending)
    opened = await client.get(f"/interact/{url}?code={code}")
    consent = opened.headers["location"]
    return agent, pending, consent, await signed_in(client, consent)


async def test_the_person_may_grant_fewer_scopes(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    agent, pending, consent, page = await _auth_token_consent(ui_world, browser)
    assert page.text.count('name="scope"') == 2
    # Nothing checked: refused, nothing decided.
    nothing = await browser.post(
        consent,
        data={"csrf": csrf(page), "action": "approve", "scopes_offered": "1"},
        headers={"origin": ORIGIN},
    )
    assert nothing.status_code == 400
    # A scope that was never asked for is ignored (never widened).
    response = await browser.post(
        consent,
        data={
            "csrf": csrf(page),
            "action": "approve",
            "scopes_offered": "1",
            "scope": ["data.read", "data.admin"],
        },
        headers={"origin": ORIGIN},
    )
    assert response.status_code == 303, response.text
    granted = await agent.poll(pending)  # type: ignore[attr-defined]
    assert granted.status_code == 200, granted.text
    assert peek(granted.json()["auth_token"])[1]["scope"] == "data.read"


async def _resource_initiated(
    world: World, client: httpx.AsyncClient
) -> tuple[Any, httpx.Response, str, str]:
    """A token request whose resource token carries an ``interaction`` claim; the person
    opens the link and signs in. Returns agent, 202, consent path, and the PS callback path
    the resource's page would send the browser back to."""
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    person = await agent.post("/person", {"resource": RES})
    view = await world.ps.interactions.lookup(*_link(person))
    await world.ps.interactions.approve(view.id, "alice")
    token = (await agent.poll(person)).json()["person_token"]
    rt = await world.resource.resource_token(
        token,
        agent.public,
        "data.read",
        interaction={"url": "https://resource.example/connect", "code": "RES-CODE-1"},
    )
    pending = await agent.post("/token", {"resource_token": rt})
    assert pending.status_code == 202, pending.text
    url, code = _link(pending)
    consent = (await client.get(f"/interact/{url}?code={code}")).headers["location"]
    form = await client.get(consent)
    signed = await client.post(
        "/signin",
        data={"csrf": csrf(form), "username": "alice", "password": PASSWORD, "next": consent},
        headers={"origin": ORIGIN},
    )
    assert signed.headers["location"] == consent
    to_resource = await client.get(consent)
    assert to_resource.status_code == 303
    target = urlsplit(to_resource.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://resource.example/connect"
    query = parse_qs(target.query)
    assert query["code"] == ["RES-CODE-1"]
    callback = query["callback"][0]
    assert callback.startswith("https://ps.example/interact/callback/")
    return agent, pending, consent, callback.removeprefix("https://ps.example")


async def test_resource_initiated_interaction_then_consent(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    agent, pending, consent, back = await _resource_initiated(ui_world, browser)
    returned = await browser.get(back)
    assert returned.status_code == 303 and returned.headers["location"] == consent
    page = await browser.get(consent)
    assert 'id="approve"' in page.text
    await browser.post(
        consent, data={"csrf": csrf(page), "action": "approve"}, headers={"origin": ORIGIN}
    )
    granted = await agent.poll(pending)
    assert granted.status_code == 200, granted.text


async def test_resource_initiated_interaction_declined_at_the_resource(
    ui_world: World, browser: httpx.AsyncClient
) -> None:
    agent, pending, _, back = await _resource_initiated(ui_world, browser)
    returned = await browser.get(f"{back}?error=access_denied")
    assert returned.status_code == 200 and 'id="error-code">denied<' in returned.text
    assert problem(await agent.poll(pending)) == "denied"
    # Another browser cannot use the callback.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ui_world.app), base_url=ORIGIN
    ) as other:
        assert (await other.get(back)).status_code == 404


class DescribedProvider(LocalAgentProvider):
    """An agent provider whose metadata carries a (hostile) Markdown ``description``."""

    def metadata(self) -> AgentProviderMetadata:
        return AgentProviderMetadata.build(
            issuer=self.issuer,
            jwks_uri=self.issuer + "/.well-known/jwks.json",
            name=self.name,
            description="**Agents** <script>alert(1)</script> [x](javascript:alert(2))",
        )


async def test_agent_provider_description_is_sanitized_markdown() -> None:
    world = make_world()
    world.ap = DescribedProvider(
        AP, PrivateKey.generate(kid="ap-1"), ps=PS, clock=world.clock, name="Example Agents"
    )
    start_ui(world)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=world.app), base_url=ORIGIN
        ) as client:
            _, _, consent = await open_interaction(world, client)
            page = await signed_in(client, consent)
            found = re.search(
                r'<div class="untrusted" id="provider-description">(.*?)</div>', page.text, re.S
            )
            assert found, page.text
            assert found.group(1) == (
                "<p><strong>Agents</strong> &lt;script&gt;alert(1)"
                "&lt;/script&gt; [x](javascript:alert(2))</p>\n"
            )
            assert "<script" not in page.text
    finally:
        await world.close()
