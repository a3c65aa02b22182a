"""The client classes themselves: SignedAuth, configuration checks, real HTTP over uvicorn,
resources that know nothing of AAuth, and how requests inherit the client's settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.agent import PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    AAuth,
    SignedAuth,
    UnsupportedRequirementError,
)
from aauth_agents.httpsig import SignatureKey
from aauth_agents.protocol import ConfigurationError
from aauth_agents.servers import LoopbackServer
from aauth_agents.transport import AsyncMappedTransport, MappedTransport


def _client(mode: str, auth: httpx.Auth, mapping: dict[str, Any], **kw: Any) -> Any:
    if mode == "sync":
        return httpx.Client(auth=auth, transport=MappedTransport(mapping, strict=True), **kw)
    return httpx.AsyncClient(auth=auth, transport=AsyncMappedTransport(mapping, strict=True), **kw)


async def _send(client: Any, method: str, url: str, **kw: Any) -> httpx.Response:
    if isinstance(client, httpx.Client):
        return await anyio.to_thread.run_sync(lambda: client.request(method, url, **kw))
    response: httpx.Response = await client.request(method, url, **kw)
    return response


async def test_signed_auth_signs_and_handles_nothing(world: World, mode: str) -> None:
    auth = SignedAuth(world.identity, capabilities=["interaction"], clock=world.clock)
    client = _client(mode, auth, world.mapping)
    try:
        ok = await _send(client, "GET", f"{RESOURCE}/agent")
        assert ok.status_code == 200 and ok.json()["agent"] == "aauth:assistant@agent.example"
        challenged = await _send(client, "GET", f"{RESOURCE}/profile")
        assert challenged.status_code == 401
        assert challenged.headers["aauth-requirement"] == "requirement=person-token"
        assert world.ps.hits.total() == 0
        assert world.resource.seen[0].capabilities == "interaction"
    finally:
        await anyio.to_thread.run_sync(client.close) if mode == "sync" else await client.aclose()


async def test_signed_auth_with_a_key_pair_and_body_coverage(world: World, mode: str) -> None:
    pair = (world.agent_key, SignatureKey.from_jwt(world.identity.agent_token))
    auth = SignedAuth(
        pair,
        cover_body=True,
        extra_components=["aauth-capabilities"],
        capabilities=["clarification"],
        clock=world.clock,
    )
    client = _client(mode, auth, world.mapping)
    try:
        posted = await _send(client, "POST", f"{RESOURCE}/echo", json={"a": 1})
        covered = posted.json()["covered"]
        assert {"content-type", "content-digest", "aauth-capabilities"} <= set(covered)
    finally:
        await anyio.to_thread.run_sync(client.close) if mode == "sync" else await client.aclose()


def test_signed_auth_refuses_other_material() -> None:
    with pytest.raises(ConfigurationError):
        SignedAuth(("key", "token"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"platform": "toaster"},
        {"device": "bad\nname"},
        {"device": "x" * 65},
        {"mission_s256": "not-a-digest"},
        {"max_poll_seconds": 0},
        {"prefer_wait": -1},
        {"capabilities": ["bad value"]},
    ],
)
def test_configuration_is_checked(world: World, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        AAuth(world.identity, **options)


def test_identity_is_required() -> None:
    with pytest.raises(ConfigurationError):
        AAuth("token")  # type: ignore[arg-type]


async def test_real_http_over_uvicorn(world: World, mode: str) -> None:
    """The three-party flow and a deferred delivery with both servers behind uvicorn."""
    with LoopbackServer(world.resource.app) as resource, LoopbackServer(world.ps.app) as ps:
        agent = Agent(mode, world.auth(), {RESOURCE: resource.url, PS: ps.url})
        try:
            assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
            slow = await agent.get(f"{RESOURCE}/slow")
            assert slow.status_code == 200 and slow.json()["result"] == "slow done"
            assert world.ps.hits["token"] == 1 and world.ps.hits["person"] == 1
        finally:
            await agent.aclose()


def _plain_app() -> Starlette:
    async def hello(request: Request) -> Response:
        return JSONResponse(
            {
                "signed": "signature" in request.headers,
                "capabilities": request.headers.get("aauth-capabilities"),
            }
        )

    async def weird(request: Request) -> Response:
        return Response(status_code=401, headers={"AAuth-Requirement": "requirement=dance"})

    return Starlette(routes=[Route("/hello", hello), Route("/weird", weird)])


async def test_a_resource_without_metadata(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), {RESOURCE: _plain_app()})
    response = await agent.get(f"{RESOURCE}/hello")
    assert response.json() == {"signed": True, "capabilities": "interaction, clarification"}
    with pytest.raises(UnsupportedRequirementError) as caught:
        await agent.get(f"{RESOURCE}/weird")
    assert caught.value.requirement.value == "dance"


async def test_requests_inherit_the_client_timeout(world: World, mode: str) -> None:
    """Every request of a call carries the client's timeout; one sent with ``Prefer:
    wait=N`` reads for at least N + 10 s (the agent asked the server to hold it that long:
    httpx's default 5 s read timeout would fail every long poll)."""
    seen: list[tuple[str | None, Any]] = []
    timeout = (httpx2 if mode == "httpx2" else httpx).Timeout(7.0)

    def record(request: httpx.Request) -> None:
        seen.append((request.headers.get("prefer"), request.extensions.get("timeout")))

    hooks: dict[str, list[Any]] = {"request": [record]}
    if mode != "sync":

        async def hook(request: httpx.Request) -> None:
            record(request)

        hooks = {"request": [hook]}
    agent = Agent(mode, world.auth(), world.mapping, timeout=timeout, event_hooks=hooks)
    try:
        assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    finally:
        await agent.aclose()
    assert len(seen) >= 8  # metadata, resource, PS metadata, person, token, jwks, retries
    long_polls = [t for prefer, t in seen if prefer == "wait=30"]
    assert long_polls and all(t == {**timeout.as_dict(), "read": 40.0} for t in long_polls)
    assert all(t == timeout.as_dict() for prefer, t in seen if prefer is None)


async def test_async_sleep_function(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 2
    world.ps.retry_after = "3"
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        world.clock.advance(seconds)

    agent = make_agent(world.auth(sleep=sleep), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    assert slept == [3, 3]


async def test_clear_cache(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    agent.auth.clear_cache()
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == 2 and world.resource.hits["metadata"] == 2
