"""The verifier without ASGI, FastAPI, SQLite-backed stores, MCP metadata, and a protected
Starlette app served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.resource import AGENT_ID, PERSON_SUB, PS, RESOURCE, SCOPES, Signer, World

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.protocol import parse_requirement
from aauth_agents.protocol.errors import AAuthError
from aauth_agents.resource import (
    AAuthMiddleware,
    AccessRule,
    McpTool,
    ResourceVerifier,
    RoutePolicy,
    TokenRejectedError,
    WildcardScopeMatcher,
    current_caller,
    mcp_metadata,
    mcp_policy,
    requires,
)
from aauth_agents.servers import LoopbackServer
from aauth_agents.stores import Stores
from aauth_agents.transport import AsyncMappedTransport, MappedTransport


def _signed(world: World, token: str, path: str = "/x") -> HttpRequest:
    request = HttpRequest("GET", RESOURCE + path, {"host": "resource.example"})
    return request.with_headers(
        sign_request(
            request,
            key=world.agent_key,
            signature_key=SignatureKey.from_jwt(token),
            clock=world.clock,
        )
    )


def test_sync_verifier_returns_the_caller(world: World) -> None:
    verifier = ResourceVerifier(world.config())
    caller = verifier.verify(
        _signed(world, world.auth_token(scope="data.read data.write", account="w1"))
    )
    assert caller.kind == "auth" and caller.person == (PS, PERSON_SUB)
    assert caller.scopes == ("data.read", "data.write") and caller.account == "w1"
    assert caller.tenant == "acme" and caller.thumbprint == world.agent_key.thumbprint()
    agent = verifier.verify(_signed(world, world.agent_token()))
    assert agent.kind == "agent" and agent.agent == AGENT_ID and agent.agent_ps == PS
    assert "token" not in repr(agent).lower().replace("tokenkind", "")  # no raw tokens in repr


def test_sync_verifier_typed_errors_and_revocation(world: World) -> None:
    verifier = ResourceVerifier(world.config())
    with pytest.raises(TokenRejectedError) as error:
        verifier.verify(_signed(world, world.auth_token(aud="https://other.example")))
    assert error.value.code == "invalid_jwt" and error.value.token_error == "invalid_auth_token"
    assert error.value.reason == "aud"
    token = world.auth_token()
    caller = verifier.verify(_signed(world, token))
    assert world.stores is not None
    world.stores.revocations.revoke_token(caller.issuer, caller.jti, 2e9)
    # written to the store by another process: seen once the last answer is stale
    world.clock.advance(verifier.config.revocation_recheck)
    with pytest.raises(AAuthError) as revoked:
        verifier.verify(_signed(world, token))
    assert revoked.value.code == "revoked" and revoked.value.status == 403


async def test_async_verifier_matches_sync(world: World) -> None:
    verifier = ResourceVerifier(world.config())
    request = _signed(world, world.person_token())
    assert await verifier.averify(request) == verifier.verify(request)


async def test_fastapi_with_add_middleware_and_requires(world: World) -> None:
    app = FastAPI()

    @app.get("/items")
    @requires(AccessRule.auth("data.read"))
    async def items(request: Request) -> dict[str, Any]:
        caller = current_caller()
        assert caller is request.state.aauth
        return {"sub": caller.person[1] if caller and caller.person else None}

    @app.get("/open")
    @requires(AccessRule.public())
    async def open_route() -> dict[str, bool]:
        return {"open": True}

    @app.get("/plain")
    async def plain(request: Request) -> dict[str, str]:
        return {"kind": request.state.aauth.kind}

    app.add_middleware(AAuthMiddleware, resource=world.resource(), policy=AccessRule.agent())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=RESOURCE) as client:
        assert (await client.get("/open")).json() == {"open": True}
        challenged = await client.get("/items", auth=world.signer(world.agent_token()))
        assert parse_requirement(challenged.headers["aauth-requirement"]).value == "person-token"
        served = await client.get("/items", auth=world.signer(world.auth_token()))
        assert served.json() == {"sub": PERSON_SUB}
        plain = await client.get("/plain", auth=world.signer(world.agent_token()))
        assert plain.json() == {"kind": "agent"}


async def test_fastapi_wrapped_from_outside_keeps_its_requires_rules(world: World) -> None:
    """``AAuthMiddleware(app, ...)`` around a FastAPI app (no ``add_middleware``): the
    ``@requires`` rules still apply, rather than the default rule for every route."""
    app = FastAPI()

    @app.get("/items")
    @requires(AccessRule.auth("data.read"))
    async def items() -> dict[str, bool]:
        return {"served": True}

    wrapped = AAuthMiddleware(app, resource=world.resource(), policy=AccessRule.agent())
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url=RESOURCE) as client:
        challenged = await client.get("/items", auth=world.signer(world.agent_token()))
        assert challenged.status_code == 401
        assert parse_requirement(challenged.headers["aauth-requirement"]).value == "person-token"
        served = await client.get("/items", auth=world.signer(world.auth_token()))
        assert served.json() == {"served": True}


async def test_wildcard_scopes_are_opt_in(world: World) -> None:
    exact = world.app(world.resource())
    wildcard = World()
    wild = wildcard.app(wildcard.resource(scope_matcher=WildcardScopeMatcher(separator=".")))
    async with world.client(exact, world.signer(world.auth_token(scope="data.*"))) as client:
        assert (await client.get("/strict")).status_code == 403
    async with wildcard.client(wild, wildcard.signer(wildcard.auth_token(scope="data.*"))) as c:
        assert (await c.get("/strict")).status_code == 200


async def test_sqlite_backed_resource_survives_a_restart(tmp_path: Path) -> None:
    """Pending records live in the SQLite file: a second process (here: a second resource
    over the same file) completes what the first one held."""
    path = tmp_path / "resource.sqlite3"
    world = World(stores=Stores.sqlite(path))
    first = world.resource()
    async with world.client(world.app(first), world.signer(world.person_token())) as client:
        held = await client.post("/deferred", json={"n": 1})
    assert held.status_code == 202
    world.stores = Stores.sqlite(path)
    second = world.app(world.resource())
    pending = held.headers["location"].removeprefix(RESOURCE)
    token = world.auth_token(scope="data.write")
    async with world.client(second, world.signer(token)) as client:
        results = await asyncio.gather(*(client.get(pending) for _ in range(4)))
    assert sorted(r.status_code for r in results).count(200) >= 1
    assert world.calls == 1  # executed once, however many polls raced
    async with world.client(second, world.signer(token)) as client:
        again = await client.get(pending)
    assert again.status_code == 200 and again.json()["body"] == '{"n":1}'
    assert world.calls == 1


async def test_mcp_tools_in_metadata_and_policy(world: World) -> None:
    tools = [
        McpTool("search", AccessRule.person()),
        McpTool("delete_doc", AccessRule.auth("data.delete")),
    ]
    assert tools[1].meta() == {"aauth.dev/access-mode": "auth-token"}
    resource = world.resource(extra_metadata=mcp_metadata(RESOURCE + "/mcp", tools))
    calls: list[str] = []

    async def mcp(request: Any) -> JSONResponse:
        calls.append((await request.json())["params"]["name"])
        return JSONResponse({"jsonrpc": "2.0", "id": 1, "result": {}})

    app = Starlette(routes=[Route("/mcp", mcp, methods=["POST"])])
    app.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy({"/mcp": mcp_policy(tools, default=AccessRule.agent())}),
    )

    def call(name: str) -> bytes:
        return json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": name, "arguments": {}},
            }
        ).encode()

    async with world.client(app, world.signer(world.person_token())) as client:
        document = (await client.get("/.well-known/aauth-resource.json")).json()
        ok = await client.post(
            "/mcp", content=call("search"), headers={"content-type": "application/json"}
        )
        refused = await client.post(
            "/mcp", content=call("delete_doc"), headers={"content-type": "application/json"}
        )
    assert document["r3_vocabularies"] == {"urn:aauth:vocabulary:mcp": RESOURCE + "/mcp"}
    assert document["mcp_tools"][1] == {
        "tool": "delete_doc",
        "access_mode": "auth-token",
        "scopes": ["data.delete"],
    }
    assert ok.status_code == 200 and refused.status_code == 401 and calls == ["search"]


def test_unknown_scopes_in_rules_are_refused_at_start_up(world: World) -> None:
    from aauth_agents.protocol.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        AAuthMiddleware(
            Starlette(),
            resource=world.resource(),
            policy=RoutePolicy({"/x": AccessRule.auth("undescribed")}),
        )


def test_protected_app_over_uvicorn_on_loopback() -> None:
    """Real HTTP: the client keeps https://resource.example (and Host, and @authority);
    only the connection goes to 127.0.0.1."""
    import time

    from aauth_agents.clock import system_clock

    live = World(clock=system_clock, stores=Stores.memory())  # type: ignore[arg-type]
    app = live.app(live.resource())
    with LoopbackServer(app) as server:
        mapping = {RESOURCE: server.url}
        agent = Signer(live.agent_key, live.agent_token(), system_clock)  # type: ignore[arg-type]
        with httpx.Client(transport=MappedTransport(mapping, strict=True)) as client:
            unsigned = client.get(RESOURCE + "/agent")
            served = client.get(RESOURCE + "/agent", auth=agent)
            metadata = client.get(RESOURCE + "/.well-known/aauth-resource.json")
            person = Signer(
                live.agent_key, live.person_token(not_after=time.time() + 3600), system_clock
            )  # type: ignore[arg-type]
            challenge = client.get(RESOURCE + "/data", auth=person)
    assert unsigned.status_code == 401 and served.status_code == 200
    assert served.json()["agent"] == AGENT_ID
    assert metadata.json()["issuer"] == RESOURCE
    assert parse_requirement(challenge.headers["aauth-requirement"]).value == "auth-token"
    assert SCOPES  # the live world publishes the same scopes


async def test_async_mapped_transport_reaches_the_app(world: World) -> None:
    app = world.app(world.resource())
    transport = AsyncMappedTransport({RESOURCE: app}, strict=True)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(RESOURCE + "/agent", auth=world.signer(world.agent_token()))
    assert response.status_code == 200
