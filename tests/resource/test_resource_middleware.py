"""AAuthMiddleware on a real Starlette app, through httpx's ASGI transport."""

from __future__ import annotations

import httpx
from support.resource import (
    AGENT_ID,
    MISSION_S256,
    NOW,
    PERSON_SUB,
    PS,
    RESOURCE,
    World,
)

from aauth_agents.protocol import parse_requirement, parse_signature_error
from aauth_agents.tokens import StaticIssuerKeys, peek, verify_resource_token


async def test_agent_route_puts_the_caller_on_state_and_context(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.agent_token())) as client:
        response = await client.get("/agent")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "agent" and body["agent"] == AGENT_ID
    assert body["thumbprint"] == world.agent_key.thumbprint()
    assert world.kinds("verified")


async def test_public_route_is_not_verified(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app) as client:
        response = await client.get("/public")
    assert response.json() == {"public": True, "caller": False}


async def test_unsigned_requests_are_challenged_by_level(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app) as client:
        agent = await client.get("/agent")
        person = await client.get("/person")
        data = await client.get("/data")
    assert agent.status_code == 401
    assert parse_requirement(agent.headers["aauth-requirement"]).value == "agent-token"
    assert "signature-error" not in agent.headers
    assert agent.headers["content-type"] == "application/problem+json"
    assert parse_requirement(person.headers["aauth-requirement"]).value == "person-token"
    assert parse_requirement(data.headers["aauth-requirement"]).value == "person-token"
    assert world.calls == 0


async def test_person_route_challenges_an_agent_token(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.agent_token())) as client:
        response = await client.get("/person")
    assert response.status_code == 401
    assert parse_requirement(response.headers["aauth-requirement"]).value == "person-token"


async def test_person_token_serves_person_routes(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.get("/person")
    body = response.json()
    assert body["kind"] == "person" and body["person"] == [PS, PERSON_SUB]
    assert body["mission_s256"] == MISSION_S256 and body["tenant"] == "acme"
    assert body["agent"] is None  # a person token carries no agent identifier


async def test_person_token_gets_a_resource_token_challenge(world: World) -> None:
    """§Auth Token Required: ps/sub/presented_jti/mission/tenant from the person token."""
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.get("/data")
    assert response.status_code == 401
    assert "signature-error" not in response.headers
    requirement = parse_requirement(response.headers["aauth-requirement"])
    assert requirement.value == "auth-token" and requirement.resource_token
    header, claims = peek(requirement.resource_token)
    assert header["typ"] == "aa-resource+jwt" and header["kid"] == "res-1"
    assert claims["iss"] == RESOURCE and claims["aud"] == PS
    assert claims["ps"] == PS and claims["sub"] == PERSON_SUB
    assert claims["presented_jti"] == claims["person_token_jti"] == "pt-1"
    assert claims["agent_jkt"] == world.agent_key.thumbprint()
    assert claims["scope"] == "data.read"
    assert claims["mission_s256"] == MISSION_S256 and claims["tenant"] == "acme"
    assert claims["exp"] - claims["iat"] <= 300 and "agent" not in claims
    # verifiable with the JWKS the resource publishes
    async with world.client(app) as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
    keys = StaticIssuerKeys().add_jwks(RESOURCE, "aauth-resource.json", jwks)
    verified = verify_resource_token(
        requirement.resource_token,
        keys=keys,
        audience=PS,
        agent_jkt=world.agent_key.thumbprint(),
        clock=world.clock,
    )
    assert verified.presented_jti == "pt-1"
    assert world.kinds("issued")[0].reason == "resource_token"


async def test_resource_token_never_outlives_the_mission(world: World) -> None:
    """A person token under a mission never outlives it, so neither does the resource token."""
    app = world.app(world.resource())
    person = world.person_token(lifetime=120)
    async with world.client(app, world.signer(person)) as client:
        response = await client.get("/data")
    token = parse_requirement(response.headers["aauth-requirement"]).resource_token
    assert token is not None
    assert peek(token)[1]["exp"] == NOW + 120


async def test_four_party_resource_tokens_go_to_the_access_server(world: World) -> None:
    from support.resource import AS

    app = world.app(world.resource(access_server=AS))
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.get("/data")
    token = parse_requirement(response.headers["aauth-requirement"]).resource_token
    assert token is not None and peek(token)[1]["aud"] == AS and peek(token)[1]["ps"] == PS


async def test_auth_token_with_the_scope_is_served(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.auth_token())) as client:
        response = await client.get("/data")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "auth" and body["scopes"] == ["data.read"]
    assert body["person"] == [PS, PERSON_SUB]


async def test_auth_token_passes_agent_and_person_routes(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.auth_token())) as client:
        assert (await client.get("/agent")).status_code == 200
        assert (await client.get("/person")).status_code == 200


async def test_step_up_names_the_remembered_person_token(world: World) -> None:
    """A request carrying an auth token gets a resource token whose presented_jti is the
    person token this agent key presented earlier."""
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token(jti="pt-77"))) as client:
        assert (await client.get("/person")).status_code == 200
    async with world.client(app, world.signer(world.auth_token())) as client:
        response = await client.post("/data", json={"x": 1})
    assert response.status_code == 401
    token = parse_requirement(response.headers["aauth-requirement"]).resource_token
    assert token is not None
    claims = peek(token)[1]
    assert claims["presented_jti"] == "pt-77"
    assert claims["scope"] == "data.read data.write"  # granted + required
    step_up = [e for e in world.kinds("challenged") if e.reason == "step_up"]
    assert step_up and step_up[0].detail["missing"] == ["data.write"]


async def test_step_up_without_a_person_token_asks_for_one(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.auth_token())) as client:
        response = await client.post("/data", json={})
    assert response.status_code == 401
    assert parse_requirement(response.headers["aauth-requirement"]).value == "person-token"


async def test_insufficient_scope_does_not_say_which(world: World) -> None:
    app = world.app(world.resource())
    before = world.snapshot()
    async with world.client(app, world.signer(world.auth_token())) as client:
        response = await client.get("/strict")
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert "data.delete" not in response.text
    for name in ("signature-error", "accept-signature-scheme", "accept-signature-alg"):
        assert name not in response.headers
    denied = [e for e in world.kinds("denied") if e.reason == "insufficient_scope"]
    assert denied[0].detail["missing"] == ["data.delete"]
    assert world.snapshot() == before and world.calls == 0


async def test_person_token_is_not_authorization(world: World) -> None:
    """§Person Token Is Not Authorization: same iss/aud/sub/cnf, only typ differs."""
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.person_token())) as client:
        response = await client.get("/strict")
    assert response.status_code == 401 and world.calls == 0
    assert parse_requirement(response.headers["aauth-requirement"]).value == "auth-token"


async def test_signature_failure_is_a_401_with_signature_error(world: World) -> None:
    app = world.app(world.resource())
    signer = world.signer(world.agent_token(), created=NOW - 3600)
    async with world.client(app, signer) as client:
        response = await client.get("/agent")
    assert response.status_code == 401
    assert parse_signature_error(response.headers["signature-error"]).code == "invalid_signature"


async def test_body_reaches_the_app_unchanged_and_digest_is_enforced(world: World) -> None:
    app = world.app(
        world.resource(additional_signature_components=["content-type", "content-digest"])
    )
    async with world.client(app, world.signer(world.agent_token())) as client:
        response = await client.post(
            "/agent", content=b'{"a": [1, 2]}', headers={"content-type": "application/json"}
        )
    assert response.json()["body"] == '{"a": [1, 2]}'
    # a body changed after signing fails the covered content-digest
    signer = world.signer(world.agent_token())

    async def tamper(request: httpx.Request) -> None:
        request._content = b'{"a": [1, 3]}'
        request.stream = httpx.ByteStream(request._content)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=RESOURCE,
        auth=signer,
        event_hooks={"request": [tamper]},
    ) as client:
        tampered = await client.post(
            "/agent", content=b'{"a": [1, 2]}', headers={"content-type": "application/json"}
        )
    assert tampered.status_code == 401
    assert parse_signature_error(tampered.headers["signature-error"]).code == "invalid_signature"


async def test_replayed_state_changing_request_is_refused(world: World) -> None:
    app = world.app(world.resource())
    async with world.client(app, world.signer(world.agent_token())) as client:
        first = await client.post("/agent", content=b"x", headers={"content-type": "text/plain"})
        again = client.build_request(
            "POST", "/agent", content=b"x", headers={**first.request.headers}
        )
        replayed = await client.send(again, auth=None)
    assert first.status_code == 200
    assert replayed.status_code == 401 and world.calls == 1
    assert parse_signature_error(replayed.headers["signature-error"]).code == "invalid_signature"


async def test_request_for_another_host_is_refused(world: World) -> None:
    app = world.app(world.resource())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://other.example",
        auth=world.signer(world.agent_token()),
    ) as client:
        response = await client.get("/agent")
    assert response.status_code == 421 and world.calls == 0


async def test_metadata_document(world: World) -> None:
    app = world.app(world.resource(access_mode="auth-token"))
    async with world.client(app) as client:
        document = (await client.get("/.well-known/aauth-resource.json")).json()
    assert document["issuer"] == RESOURCE
    assert document["jwks_uri"] == RESOURCE + "/.well-known/jwks.json"
    assert document["authorization_endpoint"] == RESOURCE + "/aauth/authorize"
    assert document["revocation_endpoint"] == RESOURCE + "/aauth/revoke"
    assert document["scope_descriptions"]["data.read"] == "Read your data"
    assert document["access_mode"] == "auth-token" and document["signature_window"] == 60
