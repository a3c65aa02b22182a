"""202 flows: deferred auth-token delivery, approval, and resource-managed interaction with
session tokens (§Deferred Responses, §Deferred Delivery, §Approval Pending,
§Resource-Managed Authorization, §AAuth-Access)."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import httpx
from support.resource import PERSON_SUB, RESOURCE, World

from aauth_agents.protocol import parse_requirement
from aauth_agents.stores import COMPLETED, FAILED, INTERACTING, PENDING


def _pending_path(response: httpx.Response) -> str:
    location = response.headers["location"]
    assert location.startswith(RESOURCE + "/aauth/pending/")
    return urlsplit(location).path


def _assert_202(response: httpx.Response, requirement: str) -> None:
    assert response.status_code == 202, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["retry-after"].isdigit()
    assert parse_requirement(response.headers["aauth-requirement"]).value == requirement
    assert response.json()["status"] in ("pending", "interacting")


async def test_deferred_delivery_executes_once_and_replays_the_result(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        held = await client.post("/deferred", json={"order": 42})
        _assert_202(held, "auth-token")
        pending = _pending_path(held)
        assert world.calls == 0
        # polling with the person token: still pending, nothing executed
        again = await client.get(pending)
        _assert_202(again, "auth-token")
    token = world.auth_token(scope="data.write")
    async with world.client(app, world.signer(token)) as client:
        done = await client.get(pending)
        assert done.status_code == 200, done.text
        assert done.json()["body"] == '{"order":42}' and world.calls == 1
        assert done.json()["kind"] == "auth"
        # §Deferred Delivery: the same auth token again -> the stored result, not a re-run
        repeat = await client.get(pending)
        assert repeat.status_code == 200 and repeat.json() == done.json()
        assert world.calls == 1
    async with world.client(app, world.signer(world.auth_token(scope="data.write"))) as client:
        other = await client.get(pending)
    assert other.status_code == 410 and world.calls == 1
    assert world.stores.pending.get(pending.rsplit("/", 1)[1]).state == COMPLETED  # type: ignore[union-attr]


async def test_deferred_poll_with_too_little_scope_keeps_the_request_held(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        pending = _pending_path(await client.post("/deferred", json={}))
    async with world.client(app, world.signer(world.auth_token(scope="data.read"))) as client:
        refused = await client.get(pending)
    assert refused.status_code == 403 and world.calls == 0
    async with world.client(app, world.signer(world.auth_token(scope="data.write"))) as client:
        assert (await client.get(pending)).status_code == 200


async def test_a_pending_url_answers_only_the_key_that_made_the_request(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        pending = _pending_path(await client.post("/deferred", json={}))
    stranger = world.agent_token(cnf=world.other_key.public_key)
    async with world.client(app, world.signer(stranger, world.other_key)) as client:
        response = await client.get(pending)
        unknown = await client.get("/aauth/pending/nope")
    assert response.status_code == 404 and unknown.status_code == 404
    async with world.client(app) as client:  # unsigned
        assert (await client.get(pending)).status_code == 401


async def test_deferred_poll_renews_an_expired_resource_token(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        first = await client.post("/deferred", json={})
        world.clock.advance(301)
        renewed = await client.get(_pending_path(first))
    _assert_202(renewed, "auth-token")
    assert renewed.headers["aauth-requirement"] != first.headers["aauth-requirement"]


async def test_approval_holds_until_resolved(world: World) -> None:
    resource = world.resource()
    app = world.app(resource)
    async with world.client(app, world.signer(world.agent_token())) as client:
        held = await client.put(
            "/approve", content=b"payload", headers={"content-type": "text/plain"}
        )
        _assert_202(held, "approval")
        pending = _pending_path(held)
        _assert_202(await client.get(pending), "approval")
        assert await resource.resolve(pending.rsplit("/", 1)[1]) is True
        done = await client.get(pending)
        assert done.status_code == 200 and done.json()["body"] == "payload"
        assert world.calls == 1
        gone = await client.get(pending)
        assert gone.status_code == 410 and world.calls == 1


async def test_rejected_approval_is_denied_then_gone(world: World) -> None:
    resource = world.resource()
    app = world.app(resource)
    async with world.client(app, world.signer(world.agent_token())) as client:
        pending = _pending_path(await client.post("/approve", json={}))
        assert await resource.reject(pending.rsplit("/", 1)[1]) is True
        assert await resource.resolve(pending.rsplit("/", 1)[1]) is False
        denied = await client.get(pending)
        assert denied.status_code == 403 and denied.json()["error"] == "denied"
        assert "signature-error" not in denied.headers
        assert (await client.get(pending)).status_code == 410
    assert world.calls == 0


async def test_pending_request_expires(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.agent_token())) as client:
        pending = _pending_path(await client.post("/approve", json={}))
        world.clock.advance(601)
    async with world.client(app, world.signer(world.agent_token())) as client:
        expired = await client.get(pending)
        assert expired.status_code == 408 and expired.json()["error"] == "expired"
        assert (await client.get(pending)).status_code == 410
    record = world.stores.pending.get(pending.rsplit("/", 1)[1])  # type: ignore[union-attr]
    assert record is not None and record.state == FAILED


async def _start_session(world: World, app: object) -> tuple[str, str, str]:
    async with world.client(app, world.signer(world.agent_token())) as client:
        held = await client.get("/session")
    _assert_202(held, "interaction")
    requirement = parse_requirement(held.headers["aauth-requirement"])
    assert requirement.url and requirement.code
    assert requirement.url.startswith(RESOURCE + "/aauth/interaction/")
    return _pending_path(held), urlsplit(requirement.url).path, requirement.code


def _signed_in(request: object) -> str | None:
    return "alice" if getattr(request, "cookies", {}).get("session") == "alice" else None


async def test_two_party_interaction_issues_a_session_token(world: World) -> None:
    app = world.app(world.resource(person_authenticator=_signed_in))
    pending, page, code = await _start_session(world, app)
    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=RESOURCE)
    async with browser:
        consent = await browser.get(page, params={"code": code.lower()})  # case-insensitive
        assert consent.status_code == 200 and "Approve" in consent.text
        assert "aauth:assistant@ap.example" in consent.text
        page_token = consent.text.split('name="page_token" value="')[1].split('"')[0]
        # Opening it again (a link preview, another browser) shows the same request, and
        # nobody signed in has engaged: the agent still sees pending.
        again = await browser.get(page, params={"code": code})
        assert again.status_code == 200 and f'value="{page_token}"' in again.text
        assert (await browser.head(page, params={"code": code})).status_code == 200
        record = world.stores.pending.get(pending.rsplit("/", 1)[1])
        assert record is not None and record.state == PENDING and record.code is not None
        # the code alone authorizes nothing: nobody is signed in
        anonymous = await browser.post(page, data={"decision": "approve", "page_token": page_token})
        assert anonymous.status_code == 401
        browser.cookies.set("session", "alice", domain="resource.example")
        approved = await browser.post(page, data={"decision": "approve", "page_token": page_token})
        assert approved.status_code == 200
        # The decision spent the code: the link and the page are refused from now on.
        assert (await browser.get(page, params={"code": code})).status_code == 410
        twice = await browser.post(page, data={"decision": "deny", "page_token": page_token})
        assert twice.status_code == 410
    async with world.client(app, world.signer(world.agent_token())) as client:
        done = await client.get(pending)
    assert done.status_code == 200, done.text
    session_token = done.headers["aauth-access"]
    assert done.json()["session"] == "alice" and world.calls == 1
    async with world.client(app, world.signer(world.agent_token())) as client:
        response = await client.get("/session", headers={"authorization": f"AAuth {session_token}"})
        assert response.status_code == 200 and response.json()["session"] == "alice"
        assert response.json()["person"] == [RESOURCE, "alice"]
    # bound to the agent's key: another key cannot use it
    stranger = world.agent_token(cnf=world.other_key.public_key)
    async with world.client(app, world.signer(stranger, world.other_key)) as client:
        stolen = await client.get("/session", headers={"authorization": f"AAuth {session_token}"})
    assert stolen.status_code == 400


async def test_interaction_denied_redirects_to_the_callback(world: World) -> None:
    app = world.app(world.resource(person_authenticator=_signed_in))
    pending, page, code = await _start_session(world, app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=RESOURCE
    ) as browser:
        consent = await browser.get(
            page, params={"code": code, "callback": "https://agent.example/cb?x=1"}
        )
        page_token = consent.text.split('name="page_token" value="')[1].split('"')[0]
        # The page carries the callback in its form (nothing is stored when it is shown).
        callback = html.unescape(consent.text.split('name="callback" value="')[1].split('"')[0])
        denied = await browser.post(
            page, data={"decision": "deny", "page_token": page_token, "callback": callback}
        )
    assert denied.status_code == 303
    assert denied.headers["location"] == "https://agent.example/cb?x=1&error=access_denied"
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.get(pending)).status_code == 403


async def test_wrong_codes_terminally_fail_the_interaction(world: World) -> None:
    app = world.app(world.resource(person_authenticator=_signed_in, max_code_attempts=3))
    pending, page, code = await _start_session(world, app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=RESOURCE
    ) as browser:
        statuses = [
            (await browser.get(page, params={"code": "ZZZZ-ZZZZ"})).status_code for _ in range(3)
        ]
        assert statuses == [400, 400, 410]
        assert (await browser.get(page, params={"code": code})).status_code == 410
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.get(pending)).status_code == 410


async def test_polling_shows_interacting_once_the_person_arrived(world: World) -> None:
    app = world.app(world.resource(person_authenticator=_signed_in))
    pending, page, code = await _start_session(world, app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=RESOURCE
    ) as browser:
        await browser.get(page, params={"code": code})  # signed out: not engaged yet
        async with world.client(app, world.signer(world.agent_token())) as client:
            assert (await client.get(pending)).json()["status"] == "pending"
        browser.cookies.set("session", "alice", domain="resource.example")
        await browser.get(page, params={"code": code})
    async with world.client(app, world.signer(world.agent_token())) as client:
        polled = await client.get(pending)
    assert polled.status_code == 202 and polled.json()["status"] == "interacting"
    assert world.stores.pending.get(pending.rsplit("/", 1)[1]).state == INTERACTING  # type: ignore[union-attr]


async def test_authorization_endpoint_issues_a_resource_token(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.post(
            "/aauth/authorize", json={"scope": "data.read data.write", "account": "w1"}
        )
        assert response.status_code == 400 and response.json()["error"] == "invalid_account"
        response = await client.post("/aauth/authorize", json={"scope": "data.read"})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    from aauth_agents.tokens import peek

    claims = peek(response.json()["resource_token"])[1]
    assert claims["sub"] == PERSON_SUB and claims["scope"] == "data.read"


async def test_authorization_endpoint_binds_an_account(world: World) -> None:
    def holds(caller: object, account: str) -> bool:
        return account == "workspace-1"

    app = world.app(world.resource(account_validator=holds))
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.post(
            "/aauth/authorize", json={"scope": "data.read", "account": "workspace-1"}
        )
    from aauth_agents.tokens import peek

    assert peek(response.json()["resource_token"])[1]["account"] == "workspace-1"


async def test_authorization_endpoint_refusals_write_nothing(world: World) -> None:
    app = world.app(world.resource())
    before = world.snapshot()
    async with world.client(app, world.signer(world.agent_token())) as client:
        agent = await client.post("/aauth/authorize", json={"scope": "data.read"})
    assert agent.status_code == 401
    assert parse_requirement(agent.headers["aauth-requirement"]).value == "person-token"
    assert world.snapshot() == before


async def test_authorization_endpoint_in_interaction_mode(world: World) -> None:
    app = world.app(
        world.resource(authorization_mode="interaction", person_authenticator=_signed_in)
    )
    async with world.client(app, world.signer(world.person_token())) as client:
        held = await client.post("/aauth/authorize", json={"scope": "data.read"})
    _assert_202(held, "interaction")
    requirement = parse_requirement(held.headers["aauth-requirement"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=RESOURCE, cookies={"session": "alice"}
    ) as browser:
        page = urlsplit(requirement.url or "").path
        consent = await browser.get(page, params={"code": requirement.code})
        token = consent.text.split('name="page_token" value="')[1].split('"')[0]
        await browser.post(page, data={"decision": "approve", "page_token": token})
    async with world.client(app, world.signer(world.person_token())) as client:
        done = await client.get(_pending_path(held))
    assert done.status_code == 200
    assert done.json() == {"status": "authorized", "scope": "data.read"}
    assert done.headers["aauth-access"]


async def test_a_revoked_session_token_is_refused(world: World) -> None:
    resource = world.resource(person_authenticator=_signed_in)
    app = world.app(resource)
    pending, page, code = await _start_session(world, app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=RESOURCE, cookies={"session": "alice"}
    ) as browser:
        consent = await browser.get(page, params={"code": code})
        token = consent.text.split('name="page_token" value="')[1].split('"')[0]
        await browser.post(page, data={"decision": "approve", "page_token": token})
    async with world.client(app, world.signer(world.agent_token())) as client:
        session_token = (await client.get(pending)).headers["aauth-access"]
        from aauth_agents.tokens import peek

        await resource.revoke_token(RESOURCE, peek(session_token)[1]["jti"])
        refused = await client.get("/session", headers={"authorization": f"AAuth {session_token}"})
    assert refused.status_code == 403 and refused.json()["error"] == "revoked"
