"""``protect_mcp`` and its parts: a stateful FastMCP server (tools read the caller of their
own request; sessions belong to the key that opened them), deferred tool calls through
the agent client with MCP's own 202s, the replay cache and an MCP session's POSTs,
configuration errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.mcp import AP, RESOURCE, World, wire

from aauth_agents.agent import AAuth, LocalAgentProvider
from aauth_agents.clock import FrozenClock
from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.integrations.mcp import (
    MCP_SIGNATURE_COMPONENTS,
    aauth_mcp_session,
    caller_from_context,
    declare_tools,
    protect_mcp,
    require_caller_from_context,
)
from aauth_agents.integrations.mcp_sdk import Context, new_server
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import parse_signature_error
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
)
from aauth_agents.resource.mcp import ACCESS_MODE_META
from aauth_agents.tokens import DWK_AGENT, StaticIssuerKeys
from aauth_agents.transport import AsyncMappedTransport

SCOPES = {"notes.read": "Read your notes", "notes.write": "Change your notes"}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def _notes_server(*, stateless: bool, ran: list[str] | None = None) -> Any:
    server: Any = new_server("notes", stateless_http=stateless, log_level="WARNING")

    @server.tool()
    def who(ctx: Context) -> dict[str, Any]:
        caller = require_caller_from_context(ctx)
        return {"kind": caller.kind, "agent": caller.agent, "scopes": list(caller.scopes)}

    @server.tool()
    def secret(ctx: Context) -> dict[str, Any]:
        caller = require_caller_from_context(ctx)
        return {"kind": caller.kind, "scopes": list(caller.scopes)}

    @server.tool()
    def archive(name: str, ctx: Context) -> str:
        require_caller_from_context(ctx)
        if ran is not None:
            ran.append(name)
        return f"archived {name}"

    return server


def _config(world: World, **overrides: Any) -> ResourceConfig:
    values: dict[str, Any] = {
        "identifier": RESOURCE,
        "signing_key": PrivateKey.generate(kid="notes-1"),
        "issuer_keys": world.resource_discovery(),
        "scope_descriptions": SCOPES,
        "event_hook": world.hook(),
    }
    values.update(overrides)
    return ResourceConfig(**values)


RULES = {
    "secret": AccessRule.auth("notes.read"),
    "archive": AccessRule.auth("notes.write", deferred=True),
}


def _rpc(method: str, params: dict[str, Any] | None = None, *, id: int | None = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    return json.dumps(message).encode()


async def test_stateful_server_tools_read_the_caller_of_their_own_request(
    local_world: World,
) -> None:
    """A stateful session runs its tools in the task of its first request; the tool still
    sees the caller of each call (agent token, then the auth token of the step-up)."""
    app = protect_mcp(_notes_server(stateless=False), resource=_config(local_world), tools=RULES)
    local_world.serve(app)
    async with aauth_mcp_session(
        RESOURCE + "/mcp", auth=local_world.auth(), transport=local_world.transport()
    ) as session:
        listed = await session.list_tools()
        before = wire(await session.call_tool("who", {}))["structuredContent"]
        secret = wire(await session.call_tool("secret", {}))["structuredContent"]
        after = wire(await session.call_tool("who", {}))["structuredContent"]
    assert before == {"kind": "agent", "agent": "aauth:assistant@agents.example", "scopes": []}
    assert secret == {"kind": "auth", "scopes": ["notes.read"]}
    assert after == {"kind": "auth", "agent": None, "scopes": ["notes.read"]}
    assert {t.name: (t.meta or {}).get(ACCESS_MODE_META) for t in listed.tools} == {
        "who": "agent-token",
        "secret": "auth-token",
        "archive": "auth-token",
    }
    metadata = app.resource.metadata()
    assert metadata["additional_signature_components"] == list(MCP_SIGNATURE_COMPONENTS)
    assert [t["tool"] for t in metadata["mcp_tools"]] == ["who", "secret", "archive"]


async def test_a_session_belongs_to_the_key_that_opened_it(local_world: World) -> None:
    app = protect_mcp(_notes_server(stateless=False), resource=_config(local_world))
    local_world.serve(app)
    transport = AsyncMappedTransport({RESOURCE: local_world.resource_url}, strict=True)
    owner = httpx.AsyncClient(auth=local_world.auth(), transport=transport)
    other = httpx.AsyncClient(auth=local_world.auth(), transport=transport)
    async with owner, other:
        opened = await owner.post(
            RESOURCE + "/mcp",
            headers=HEADERS,
            content=_rpc(
                "initialize",
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "0"},
                },
            ),
        )
        session = opened.headers["mcp-session-id"]
        joined = {**HEADERS, "mcp-session-id": session}
        initialized = await owner.post(
            RESOURCE + "/mcp", headers=joined, content=_rpc("notifications/initialized", id=None)
        )
        stolen = await other.post(
            RESOURCE + "/mcp", headers=joined, content=_rpc("tools/list", {}, id=2)
        )
        listed = await owner.post(
            RESOURCE + "/mcp", headers=joined, content=_rpc("tools/list", {}, id=3)
        )
        ended = await owner.delete(RESOURCE + "/mcp", headers=joined)
        gone = await owner.post(
            RESOURCE + "/mcp", headers=joined, content=_rpc("tools/list", {}, id=4)
        )
    assert opened.status_code == 200, opened.text
    assert initialized.status_code == 202  # MCP's own 202 (no Location): not deferred
    assert stolen.status_code == 404 and stolen.json()["error"]["message"] == "Session not found"
    assert listed.status_code == 200 and '"who"' in listed.text
    assert ended.status_code == 200 and gone.status_code == 404


async def test_a_deferred_tool_call_is_held_and_delivered_once(local_world: World) -> None:
    """A tool whose rule holds the call (202 with Location, §Deferred Delivery): that 202
    is AAuth's, which fetches the auth token and polls; the held call runs
    once and its result is MCP's answer."""
    ran: list[str] = []
    app = protect_mcp(
        _notes_server(stateless=True, ran=ran), resource=_config(local_world), tools=RULES
    )
    local_world.serve(app)
    waits: list[float] = []

    async def wait(seconds: float) -> None:  # the agent's waits between polls, recorded
        waits.append(seconds)

    async with aauth_mcp_session(
        RESOURCE + "/mcp", auth=local_world.auth(sleep=wait), transport=local_world.transport()
    ) as session:
        result = await session.call_tool("archive", {"name": "2024"})
    data = wire(result)
    assert not data.get("isError"), data["content"]
    assert data["content"][0]["text"] == "archived 2024"
    assert ran == ["2024"] and waits == [5.0]  # the resource's Retry-After
    assert [e.reason for e in local_world.resource_events("pending")] == ["auth-token"]
    assert len(local_world.resource_events("completed")) == 1


async def test_in_process_without_lifespan_and_aclose() -> None:
    """No ASGI lifespan (httpx's ASGI transport): the first request starts the session
    manager; aclose() stops it."""
    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"))
    app = protect_mcp(
        _notes_server(stateless=True),
        resource=ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate(kid="r1"),
            scope_descriptions=SCOPES,
            issuer_keys=StaticIssuerKeys({(AP, DWK_AGENT): [provider.key.public_key]}),
        ),
        tools=RULES,
    )
    identity = provider.identity(PrivateKey.generate(), "aauth:bot@agents.example")
    async with aauth_mcp_session(
        RESOURCE + "/mcp", auth=AAuth(identity), transport=AsyncMappedTransport({RESOURCE: app})
    ) as session:
        who = wire(await session.call_tool("who", {}))["structuredContent"]
    assert who is not None and who["agent"] == "aauth:bot@agents.example"
    mcp_app = app.app
    assert mcp_app._task is not None and not mcp_app._task.done()  # type: ignore[attr-defined]
    await mcp_app.aclose()  # type: ignore[attr-defined]
    assert mcp_app._task.done()  # type: ignore[attr-defined]


def _signed_post(
    key: PrivateKey, token: str, body: bytes, created: int, *, cover_body: bool
) -> tuple[bytes, dict[str, str]]:
    headers = {"host": "resource.example", "content-type": "application/json"}
    request = HttpRequest("POST", RESOURCE + "/mcp", headers, body)
    signed = sign_request(
        request,
        key=key,
        signature_key=SignatureKey.from_jwt(token),
        created=created,
        cover_body=cover_body,
    )
    return body, {**headers, **signed}


@pytest.mark.parametrize("covered", [True, False])
async def test_replay_cache_and_bodies_signed_in_the_same_second(covered: bool) -> None:
    """With ``content-digest`` covered (what an MCP resource asks for), POSTs with different
    bodies signed in the same second are all served and an exact replay is refused; without
    it, the second one is indistinguishable from a replay and refused (§Freshness and
    Replay)."""
    clock = FrozenClock()
    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"), clock=clock)
    agent_key = PrivateKey.generate()
    token = provider.mint(agent_key, "aauth:bot@agents.example")
    config = ResourceConfig(
        identifier=RESOURCE,
        signing_key=PrivateKey.generate(kid="r1"),
        clock=clock,
        issuer_keys=StaticIssuerKeys({(AP, DWK_AGENT): [provider.key.public_key]}),
        additional_signature_components=MCP_SIGNATURE_COMPONENTS if covered else (),
    )

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(json.loads(await request.body()))

    app = AAuthMiddleware(
        Starlette(routes=[Route("/mcp", echo, methods=["POST"])]),
        resource=config,
        policy=RoutePolicy(default=AccessRule.agent()),
    )
    now = int(clock())
    first = _signed_post(agent_key, token, _rpc("tools/list", {}, id=1), now, cover_body=covered)
    second = _signed_post(agent_key, token, _rpc("tools/list", {}, id=2), now, cover_body=covered)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=RESOURCE
    ) as client:
        one = await client.post("/mcp", content=first[0], headers=first[1])
        two = await client.post("/mcp", content=second[0], headers=second[1])
        replayed = await client.post("/mcp", content=first[0], headers=first[1])
    assert one.status_code == 200 and one.json()["id"] == 1
    if covered:
        assert two.status_code == 200 and two.json()["id"] == 2
    else:
        assert two.status_code == 401
        assert parse_signature_error(two.headers["signature-error"]).code == "invalid_signature"
    assert replayed.status_code == 401
    assert parse_signature_error(replayed.headers["signature-error"]).code == "invalid_signature"


def test_caller_from_context_outside_a_request() -> None:
    ctx: Context = Context()
    assert caller_from_context(ctx) is None
    with pytest.raises(LookupError):
        require_caller_from_context(ctx)


def test_configuration_errors() -> None:
    server = _notes_server(stateless=True)
    with pytest.raises(ConfigurationError, match="does not have"):
        declare_tools(server, {"secrte": AccessRule.auth("notes.read")}, default=AccessRule.agent())
    with pytest.raises(ConfigurationError):  # session-token is never an annotation (R3)
        declare_tools(server, {"who": AccessRule.session()}, default=AccessRule.agent())
    config = ResourceConfig(
        identifier=RESOURCE,
        signing_key=PrivateKey.generate(kid="r1"),
        issuer_keys=StaticIssuerKeys({}),
        scope_descriptions=SCOPES,
    )
    with pytest.raises(ConfigurationError, match="does not publish"):
        protect_mcp(_notes_server(stateless=True), resource=AAuthResource(config), tools=RULES)
    with pytest.raises(ConfigurationError):  # a scope the resource does not describe
        protect_mcp(
            _notes_server(stateless=True),
            resource=config,
            tools={"secret": AccessRule.auth("notes.delete")},
        )


async def test_session_helper_argument_errors() -> None:
    with pytest.raises(ConfigurationError):
        async with aauth_mcp_session(RESOURCE + "/mcp"):
            pass
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigurationError):
            async with aauth_mcp_session(
                RESOURCE + "/mcp", http_client=client, auth=httpx.BasicAuth("a", "b")
            ):
                pass


async def test_the_asgi_lifespan_runs_the_session_manager() -> None:
    """With a lifespan (uvicorn's default) the session manager runs from startup to
    shutdown, through the middleware; no background task is started."""
    import anyio

    provider = LocalAgentProvider(AP, PrivateKey.generate(kid="ap-1"))
    app = protect_mcp(
        _notes_server(stateless=True),
        resource=ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate(kid="r1"),
            scope_descriptions=SCOPES,
            issuer_keys=StaticIssuerKeys({(AP, DWK_AGENT): [provider.key.public_key]}),
        ),
        tools=RULES,
    )
    mcp_app: Any = app.app
    to_app, from_test = anyio.create_memory_object_stream[dict[str, Any]](4)
    to_test, from_app = anyio.create_memory_object_stream[dict[str, Any]](4)

    async def receive() -> dict[str, Any]:
        return await from_test.receive()

    async def send(message: Any) -> None:
        await to_test.send(dict(message))

    async with anyio.create_task_group() as tg:
        tg.start_soon(
            app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send
        )
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        running = mcp_app._live
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"
    assert running and not mcp_app._live and mcp_app._task is None
