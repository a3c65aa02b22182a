"""Discovery over real HTTP: uvicorn on 127.0.0.1, the identifier mapped at the transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import AsyncDiscovery, Discovery, EgressPolicy
from aauth_agents.protocol.errors import DiscoveryError
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

ISSUER = "https://ps.example"
DWK = "aauth-person.json"
META = f"/.well-known/{DWK}"
JWKS = "/.well-known/jwks.json"


def discovery_for(
    kind: str, mapping: dict[str, Any], clock: FrozenClock, egress: EgressPolicy, **kwargs: Any
) -> Discovery | AsyncDiscovery:
    if kind == "sync":
        return Discovery(
            transport=MappedTransport(mapping, strict=True), clock=clock, egress=egress, **kwargs
        )
    return AsyncDiscovery(
        transport=AsyncMappedTransport(mapping, strict=True), clock=clock, egress=egress, **kwargs
    )


async def get_key(discovery: Discovery | AsyncDiscovery, kid: str = "k1") -> Any:
    if isinstance(discovery, Discovery):
        return await anyio.to_thread.run_sync(discovery.get_key, ISSUER, DWK, kid)
    return await discovery.aget_key(ISSUER, DWK, kid)


async def close(discovery: Discovery | AsyncDiscovery) -> None:
    if isinstance(discovery, Discovery):
        discovery.close()
    else:
        await discovery.aclose()


async def test_fetch_cache_and_stale_fallback_over_real_http(
    kind: str, server: Any, clock: FrozenClock, uvicorn_server: Any, loopback_policy: Any
) -> None:
    server.set_jwks(headers={"Cache-Control": "max-age=120"})
    with uvicorn_server(server.app) as running:
        mapping = {ISSUER: running.url}
        discovery = discovery_for(kind, mapping, clock, loopback_policy())
        key = await get_key(discovery)
        await get_key(discovery)
        assert server.hits == {META: 1, JWKS: 1}
        assert {seen["host"] for seen in server.seen} == {"ps.example"}
        assert [seen["path"] for seen in server.seen] == [META, JWKS]
    # the server is gone: connections are refused, the cached JWKS is still used
    clock.advance(121)
    assert (await get_key(discovery)) == key
    await close(discovery)

    fresh = discovery_for(kind, mapping, clock, loopback_policy())
    with pytest.raises(DiscoveryError, match="ConnectError"):
        await get_key(fresh)  # nothing cached: the failure surfaces, typed
    await close(fresh)


async def test_connections_go_to_the_admitted_address(
    kind: str, server: Any, clock: FrozenClock, uvicorn_server: Any, loopback_policy: Any
) -> None:
    """With pinning, the request is retargeted to the address egress admission checked
    (here 127.0.0.1, reached through a mapping of that address) and keeps Host: ps.example."""
    with uvicorn_server(server.app) as running:
        mapping = {"https://127.0.0.1": running.url}
        pinned = discovery_for(kind, mapping, clock, loopback_policy(), pin_connections=True)
        assert (await get_key(pinned)).kid == "k1"
        assert {seen["host"] for seen in server.seen} == {"ps.example"}
        await close(pinned)

        elsewhere = EgressPolicy.for_mapped_hosts({"ps.example": "127.0.0.2"}, allow_loopback=True)
        misdirected = discovery_for(kind, mapping, clock, elsewhere, pin_connections=True)
        with pytest.raises(DiscoveryError, match="ConnectError"):
            await get_key(misdirected)  # went to 127.0.0.2, which nothing maps
        await close(misdirected)
    assert server.hits == {META: 1, JWKS: 1}


def dripping_app(chunks: int, delay: float, chunk: bytes = b" ") -> Starlette:
    async def drip(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"issuer": "https://ps.example"'
            for _ in range(chunks):
                await asyncio.sleep(delay)
                yield chunk
            yield b"}"

        return StreamingResponse(body(), media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", drip)])


async def test_a_slowly_dripping_server_times_out(
    kind: str, clock: FrozenClock, uvicorn_server: Any, loopback_policy: Any
) -> None:
    # each chunk arrives well within the per-read timeout; the whole never completes in time
    with uvicorn_server(dripping_app(chunks=40, delay=0.05)) as running:
        mapping = {ISSUER: running.url}
        discovery = discovery_for(kind, mapping, clock, loopback_policy(), timeout=0.5)
        with pytest.raises(DiscoveryError, match="no complete response"):
            await get_key(discovery)
        await close(discovery)


async def test_streamed_documents_are_size_limited(
    kind: str, clock: FrozenClock, uvicorn_server: Any, loopback_policy: Any
) -> None:
    # chunked, no Content-Length: the limit is enforced while reading
    with uvicorn_server(dripping_app(chunks=64, delay=0, chunk=b" " * 8192)) as running:
        mapping = {ISSUER: running.url}
        discovery = discovery_for(
            kind, mapping, clock, loopback_policy(), max_document_bytes=64 * 1024
        )
        with pytest.raises(DiscoveryError, match="larger than 65536"):
            await get_key(discovery)
        await close(discovery)
