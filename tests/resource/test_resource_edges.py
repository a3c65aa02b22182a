"""Edges: logs and events never carry tokens, websockets, body limits, HEAD, explicit expiry,
step-up keeps the account and the identity scopes."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from support.resource import World

from aauth_agents.protocol import parse_requirement
from aauth_agents.tokens import peek


async def test_logs_and_events_never_carry_tokens(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aauth_agents")
    app = world.app(world.resource())
    person, auth = world.person_token(), world.auth_token()
    async with world.client(app, world.signer(person)) as client:
        challenge = await client.get("/data")
    async with world.client(app, world.signer(auth)) as client:
        await client.get("/data")
        await client.get("/strict")
    resource_token = parse_requirement(challenge.headers["aauth-requirement"]).resource_token
    assert resource_token
    text = caplog.text + repr(world.events)
    assert world.events and caplog.records
    for secret in (person, auth, resource_token, *(t.split(".")[2] for t in (person, auth))):
        assert secret not in text


async def test_websockets_are_refused_unless_public(world: World) -> None:
    app = world.app(world.resource())
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/agent",
        "raw_path": b"/agent",
        "headers": [],
        "query_string": b"",
        "root_path": "",
        "scheme": "wss",
        "subprotocols": [],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_body_limit(world: World) -> None:
    app = world.app(world.resource(max_body_bytes=10))
    async with world.client(app, world.signer(world.agent_token())) as client:
        response = await client.post(
            "/agent", content=b"x" * 11, headers={"content-type": "text/plain"}
        )
    assert response.status_code == 413 and world.calls == 0


async def test_head_on_published_documents(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app) as client:
        head = await client.head("/.well-known/aauth-resource.json")
        post = await client.post("/.well-known/jwks.json")
    assert head.status_code == 200 and head.content == b""
    assert post.status_code == 405


async def test_operator_expires_a_pending_request(world: World) -> None:
    resource = world.resource()
    app = world.app(resource)
    async with world.client(app, world.signer(world.agent_token())) as client:
        held = await client.post("/approve", json={})
        record_id = urlsplit(held.headers["location"]).path.rsplit("/", 1)[1]
        assert await resource.expire(record_id) is True
        assert (await client.get(urlsplit(held.headers["location"]).path)).status_code == 408
    assert await resource.expire(record_id) is False
    assert await resource.resolve("no-such-record") is False


async def test_step_up_keeps_the_account(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        await client.get("/person")
    async with world.client(app, world.signer(world.auth_token(account="w1"))) as client:
        response = await client.post("/data", json={})
    token = parse_requirement(response.headers["aauth-requirement"]).resource_token
    assert token is not None and peek(token)[1]["account"] == "w1"


async def test_step_up_keeps_the_identity_scopes(world: World) -> None:
    """The broader token asked for on a step-up keeps every granted scope, identity scopes
    included (§Scopes): dropping ``email`` would cost the next token its email claims and
    send the agent back for them on the next call to a route that needs them."""
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        await client.get("/person")
    async with world.client(
        app, world.signer(world.auth_token(scope="data.read openid email"))
    ) as client:
        response = await client.post("/data", json={})
    token = parse_requirement(response.headers["aauth-requirement"]).resource_token
    assert token is not None and peek(token)[1]["scope"] == "data.read openid email data.write"


async def test_a_challenge_writes_only_the_person_token_record(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.post("/data", json={})
    assert response.status_code == 401
    assert world.stores is not None
    assert len(world.stores.person_tokens) == 1  # type: ignore[arg-type]
    assert len(world.stores.pending) == 0  # type: ignore[arg-type]
    assert not world.stores.replay._entries  # type: ignore[union-attr]


async def test_resource_app_serves_only_the_published_endpoints(world: World) -> None:
    import httpx

    from aauth_agents.resource import resource_app

    app = resource_app(world.resource())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://resource.example"
    ) as client:
        assert (await client.get("/.well-known/jwks.json")).json()["keys"][0]["kid"] == "res-1"
        assert (await client.get("/anything")).status_code == 404


async def test_finished_pending_records_are_purged_once_due(world: World) -> None:
    resource = world.resource(purge_interval=600)
    app = world.app(resource)
    assert world.stores is not None
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.post("/approve", json={})).status_code == 202
    world.clock.advance(599)
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.post("/approve", json={})).status_code == 202
    assert len(world.stores.pending) == 2  # type: ignore[arg-type]  # not due yet
    world.clock.advance(3700)  # the first record is past purge_at (4200 s), the second not
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.get("/agent")).status_code == 200  # any request: the pass is due
    assert len(world.stores.pending) == 1  # type: ignore[arg-type]


async def test_housekeeping_off_keeps_records_until_purge(world: World) -> None:
    resource = world.resource(purge_interval=0)
    app = world.app(resource)
    assert world.stores is not None
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.post("/approve", json={})).status_code == 202
    world.clock.advance(600 + 3600)
    async with world.client(app, world.signer(world.agent_token())) as client:
        assert (await client.post("/approve", json={})).status_code == 202
    assert len(world.stores.pending) == 2  # type: ignore[arg-type]
    assert await resource.purge() == 1
    assert len(world.stores.pending) == 1  # type: ignore[arg-type]


async def test_verified_token_cache_can_be_cleared_and_stores_purged(world: World) -> None:
    resource = world.resource()
    app = world.app(resource)
    token = world.auth_token()
    async with world.client(app, world.signer(token)) as client:
        assert (await client.get("/data")).status_code == 200
        # drop the PS key: the cached verification still serves until the cache is cleared
        world.keys._keys.clear()  # type: ignore[attr-defined]
        assert (await client.get("/data")).status_code == 200
        resource.verifier.clear_cache()
        assert (await client.get("/data")).status_code == 401
    world.clock.advance(4000)
    assert await resource.purge() >= 1  # the remembered token has expired
