"""mcp-call-overhead: an MCP ``tools/call`` through an AAuth session with every token cached,
against the same call through a plain ``ClientSession``, on the same in-process MCP server.

As for client-overhead and tool-overhead, the server is an ordinary one (it does not verify;
it publishes resource metadata, which the agent fetches once): the row measures what AAuth
adds to the agent's call -- the session's requests signed (``content-digest`` covered, as
MCP resources ask), the flow run for each, the cached auth token presented. Both sessions
are stateful streamable HTTP (the SDK's default), reached in-process through the same
transport; each call reads another name (another body, digest and signature, as in real
traffic). Baseline and subject alternate in many short rounds; the ratio is the median of
the rounds' ratios.

A row without a goal shows the whole price, both sides: the same call to a copy of the
server behind ``protect_mcp`` (the tool needs an auth token: the resource verifies the
signature, the key binding and the token, checks the replay cache and the tool's rule).

Runs on the installed MCP SDK line (``mcp_sdk.MCP2``): ``.venv`` (1.x) and ``.venv-mcp2``
(2.x) each report their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from mcp import ClientSession
from starlette.responses import JSONResponse

from aauth_agents.clock import system_clock
from aauth_agents.integrations.mcp import McpServerApp, aauth_mcp_session, protect_mcp
from aauth_agents.integrations.mcp_sdk import (
    MCP_MAJOR,
    http,
    http_transport,
    new_server,
    open_streamable_http,
)
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import AccessRule, ResourceConfig
from aauth_agents.transport import AsyncMappedTransport

GOAL = 1.15
RESOURCE = "https://resource.example"
URL = RESOURCE + "/mcp"


def _server() -> Any:
    server = new_server("bench", log_level="WARNING")

    @server.tool()
    def read(name: str) -> str:
        """Read a file."""
        return f"the contents of {name}"

    return server


@contextlib.asynccontextmanager
async def _plain_session(app: Any) -> AsyncIterator[ClientSession]:
    transport = http_transport(AsyncMappedTransport({RESOURCE: app}, strict=True))
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(http.AsyncClient(transport=transport))
        read, write = await stack.enter_async_context(open_streamable_http(URL, http_client=client))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def _timer(
    session: ClientSession, names: itertools.count[int]
) -> Callable[[int], Awaitable[float]]:
    async def run(n: int) -> float:
        calls = [{"name": f"file-{i}.txt"} for i in itertools.islice(names, n)]
        start = time.perf_counter()
        for arguments in calls:
            result = await session.call_tool("read", arguments)
            assert not result.model_dump(by_alias=True).get("isError"), result
        return time.perf_counter() - start

    return run


def _with_metadata(app: Any) -> Any:
    """``app`` that also answers the resource metadata request (one ASGI dispatch)."""
    metadata = JSONResponse({"issuer": RESOURCE, "name": "benchmark MCP server"})

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/.well-known/aauth-resource.json":
            await metadata(scope, receive, send)
        else:
            await app(scope, receive, send)

    return serve


async def _ratios(
    subject: Callable[[int], Awaitable[float]],
    baseline: Callable[[int], Awaitable[float]],
    batch: int,
    rounds: int,
) -> float:
    await baseline(batch), await subject(batch)  # warm up: metadata cached, paths hot
    ratios = []
    for _ in range(rounds):
        base = await baseline(batch)
        ratios.append(await subject(batch) / base)
    return statistics.median(ratios)


async def _measure(batch: int, rounds: int) -> tuple[float, float]:
    from run import _warm_party

    auth = _warm_party(scope="files.read", clock=system_clock)[0]
    # another agent for the protected copy: its metadata asks for more than the plain one's
    verified_auth, issuer_keys = _warm_party(scope="files.read", clock=system_clock)
    plain = McpServerApp(_server(), hosts=["resource.example"])
    protected = protect_mcp(
        _server(),
        resource=ResourceConfig(
            identifier=RESOURCE,
            signing_key=PrivateKey.generate(),
            issuer_keys=issuer_keys,
            scope_descriptions={"files.read": "Read your files"},
        ),
        tools={"read": AccessRule.auth("files.read")},
    )
    names = itertools.count()
    transport = AsyncMappedTransport({RESOURCE: _with_metadata(plain)}, strict=True)
    try:
        async with (
            _plain_session(plain) as plain_session,
            aauth_mcp_session(URL, auth=auth, transport=transport) as aauth_session,
        ):
            baseline = _timer(plain_session, names)
            client = await _ratios(_timer(aauth_session, names), baseline, batch, rounds)
        async with (
            _plain_session(plain) as plain_session,
            aauth_mcp_session(
                URL,
                auth=verified_auth,
                transport=AsyncMappedTransport({RESOURCE: protected}, strict=True),
            ) as aauth_session,
        ):
            baseline = _timer(plain_session, names)
            both = await _ratios(_timer(aauth_session, names), baseline, batch, rounds // 2)
    finally:
        await plain.aclose()
        await protected.app.aclose()
    return client, both


def benchmark(batch: int = 10, rounds: int = 80) -> int:
    from run import report

    logging.getLogger("mcp").setLevel(logging.CRITICAL)  # streams cut at the end of a session
    client, both = asyncio.run(_measure(batch, rounds))
    missed = report(
        f"mcp-call-overhead (mcp {MCP_MAJOR}.x)", client, "a plain ClientSession tools/call", GOAL
    )
    print(f"{'  the server verifying too':38} x{both:5.2f}")
    return missed
