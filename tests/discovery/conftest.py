"""Fixtures for discovery tests: real Starlette issuers, reached in-process through the mapped
transports or over a real uvicorn server on 127.0.0.1, and a sync/async facade so each
behaviour is checked on both front ends.

Helpers live here (not in an importable module) so that test directories cannot collide.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import AsyncDiscovery, Discovery, EgressPolicy
from aauth_agents.keys import PrivateKey
from aauth_agents.servers import LoopbackServer
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

ISSUER = "https://ps.example"
DWK = "aauth-person.json"
METADATA_PATH = f"/.well-known/{DWK}"
JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class IssuerServer:
    """A real ASGI issuer whose documents, statuses and headers a test can change, and which
    counts every request (by path) and records what it saw."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.replies: dict[str, Reply] = {}
        self.hits: Counter[str] = Counter()
        self.seen: list[dict[str, str]] = []
        self.signing_keys = {"k1": PrivateKey.generate(kid="k1")}
        self.set_metadata()
        self.set_jwks()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle)])

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] += 1
        self.seen.append(
            {
                "host": request.headers.get("host", ""),
                "path": path,
                "query": request.url.query,
                "scheme": request.url.scheme,
            }
        )
        reply = self.replies.get(path)
        if reply is None:
            return Response(status_code=404)
        return Response(
            reply.body,
            status_code=reply.status,
            headers=reply.headers,
            media_type="application/json",
        )

    def set(
        self,
        path: str,
        document: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        body = raw if raw is not None else json.dumps(document).encode()
        self.replies[path] = Reply(status, body, dict(headers or {}))

    def set_metadata(
        self,
        *,
        headers: dict[str, str] | None = None,
        dwk: str = DWK,
        drop: tuple[str, ...] = (),
        **members: Any,
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}{JWKS_PATH}",
            **members,
        }
        for name in drop:
            document.pop(name, None)
        self.set(f"/.well-known/{dwk}", document, headers=headers)
        return document

    def set_jwks(
        self, keys: list[Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        if keys is None:
            keys = [k.public_key.to_jwk() for k in self.signing_keys.values()]
        self.set(JWKS_PATH, {"keys": keys}, headers=headers)

    def rotate(self, kid: str) -> PrivateKey:
        """Publish an extra key ``kid`` (keeping the others)."""
        self.signing_keys[kid] = PrivateKey.generate(kid=kid)
        self.set_jwks(headers=self.replies[JWKS_PATH].headers)
        return self.signing_keys[kid]

    def fail(self, path: str, status: int = 500) -> None:
        self.replies[path] = Reply(status, b"oops", {})


class Front:
    """One interface over Discovery (called in a worker thread) and AsyncDiscovery."""

    def __init__(self, kind: str, discovery: Discovery | AsyncDiscovery) -> None:
        self.kind = kind
        self.discovery = discovery

    async def _call(self, name: str, *args: Any) -> Any:
        if isinstance(self.discovery, Discovery):
            return await anyio.to_thread.run_sync(getattr(self.discovery, name), *args)
        return await getattr(self.discovery, name)(*args)

    async def metadata(self, issuer: str = ISSUER, dwk: str = DWK) -> Any:
        return await self._call("metadata", issuer, dwk)

    async def jwks(self, issuer: str = ISSUER, dwk: str = DWK) -> Any:
        return await self._call("jwks", issuer, dwk)

    async def get_key(self, kid: str = "k1", issuer: str = ISSUER, dwk: str = DWK) -> Any:
        name = "get_key" if isinstance(self.discovery, Discovery) else "aget_key"
        return await self._call(name, issuer, dwk, kid)

    async def refresh_key(self, kid: str = "k1", issuer: str = ISSUER, dwk: str = DWK) -> Any:
        name = "refresh_key" if isinstance(self.discovery, Discovery) else "arefresh_key"
        return await self._call(name, issuer, dwk, kid)

    async def close(self) -> None:
        if isinstance(self.discovery, Discovery):
            self.discovery.close()
        else:
            await self.discovery.aclose()


def loopback_policy(*hosts: str, **permissions: Any) -> EgressPolicy:
    """Egress policy for mapped hosts that 'resolve' to 127.0.0.1 (loopback explicitly on)."""
    permissions.setdefault("allow_loopback", True)
    names = hosts or ("ps.example",)
    return EgressPolicy.for_mapped_hosts({h: "127.0.0.1" for h in names}, **permissions)


FrontFactory = Callable[..., Front]


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def server() -> IssuerServer:
    return IssuerServer()


@pytest.fixture
async def make_front(kind: str, clock: FrozenClock) -> Any:
    """``make_front(mapping=None, egress=None, **kwargs)`` -> :class:`Front` of this test's
    kind; ``mapping`` defaults to the ``server`` fixture's app for ``https://ps.example``."""
    fronts: list[Front] = []

    def make(
        mapping: dict[str, Any], *, egress: EgressPolicy | None = None, **kwargs: Any
    ) -> Front:
        kwargs.setdefault("clock", clock)
        egress = egress or loopback_policy()
        discovery: Discovery | AsyncDiscovery
        if kind == "sync":
            discovery = Discovery(
                transport=MappedTransport(mapping, strict=True), egress=egress, **kwargs
            )
        else:
            discovery = AsyncDiscovery(
                transport=AsyncMappedTransport(mapping, strict=True), egress=egress, **kwargs
            )
        front = Front(kind, discovery)
        fronts.append(front)
        return front

    yield make
    for front in fronts:
        await front.close()


@pytest.fixture
def front(make_front: FrontFactory, server: IssuerServer) -> Front:
    return make_front({ISSUER: server.app})


@pytest.fixture
def uvicorn_server() -> Callable[[Any], LoopbackServer]:
    """``with uvicorn_server(app) as running: running.url`` -- the package's loopback runner."""
    return LoopbackServer


@pytest.fixture(name="loopback_policy")
def _loopback_policy() -> Callable[..., EgressPolicy]:
    return loopback_policy


@pytest.fixture
def make_server() -> Callable[..., IssuerServer]:
    return IssuerServer
