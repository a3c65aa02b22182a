"""Real parties for the MCP integration tests, each over real HTTP on loopback.

* an agent provider (:class:`~aauth_agents.agent.LocalAgentProvider`; its metadata and JWKS
  are reached in-process by whoever verifies agent tokens);
* a person server: the in-repo one (``create_person_server``, auto-approving for alice; or,
  with ``consent_pages``, asking the person on its consent pages) on uvicorn, or
  @hellocoop/mockin (a real -11 PS in its own Node process);
* the resource under test (an ASGI app the test builds, e.g. the demo resource) on uvicorn,
  finding the provider's and the PS's keys through real discovery;
* an agent: :class:`~aauth_agents.agent.AAuth` over an
  :class:`~aauth_agents.transport.AsyncMappedTransport` that records every request it sends.

Identifiers stay real (``https://resource.example``, ``https://ps.example``,
``https://agents.example``); only connections are mapped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from aauth_agents.agent import AAuth, AgentIdentity, LocalAgentProvider
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.keys import PrivateKey
from aauth_agents.resource import ResourceEvent
from aauth_agents.servers import LoopbackServer
from aauth_agents.transport import AsyncMappedTransport, MappedTransport, origin_of, retarget

AP = "https://agents.example"
PS = "https://ps.example"
RESOURCE = "https://resource.example"
AGENT_ID = "aauth:assistant@agents.example"
PASSWORD = "correct horse battery staple"
HOSTS = {"agents.example": "127.0.0.1", "ps.example": "127.0.0.1", "resource.example": "127.0.0.1"}


def wire(model: Any) -> dict[str, Any]:
    """An MCP result as its JSON on the wire (``isError``, ``structuredContent``): the same
    on both MCP SDK lines, whose Python field names differ (2.x: ``is_error``, ...)."""
    data: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return data


def egress() -> EgressPolicy:
    return EgressPolicy.for_mapped_hosts(HOSTS, allow_loopback=True)


class Later(httpx.AsyncBaseTransport):
    """Connects to an origin known only once its server is up (two servers that must find
    each other cannot both be started first)."""

    def __init__(self) -> None:
        self.target: str | None = None
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.target is not None, "the server this transport reaches is not up yet"
        scheme, host, port = origin_of(self.target)
        return await self._inner.handle_async_request(retarget(request, scheme, host, port))

    async def aclose(self) -> None:
        await self._inner.aclose()


class Recording(httpx.AsyncBaseTransport):
    """Records ``(host, method, path)`` of every request, then sends it on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.host, request.method, request.url.path))
        return await self.inner.handle_async_request(request)

    def count(self, host: str, path: str) -> int:
        return sum(1 for h, _, p in self.sent if h == host and p == path)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class World:
    """The parties around one resource. ``ps_kind`` is ``"in-repo"`` or ``"mockin"``;
    ``consent_pages``: the in-repo PS serves its pages and asks alice there (interactive
    consent) instead of approving everything."""

    ps_kind: str
    mockin: Any = None
    consent_pages: bool = False
    provider: LocalAgentProvider = field(init=False)
    events: list[ResourceEvent] = field(default_factory=list)
    ps_url: str = ""
    resource_url: str = ""
    token_path: str = ""
    _resource_late: Later = field(default_factory=Later)
    _ps_late: Later = field(default_factory=Later)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __post_init__(self) -> None:
        self.provider = LocalAgentProvider(
            AP, PrivateKey.generate(kid="ap-1"), ps=PS, name="Example Agents"
        )

    # -- the parties ---------------------------------------------------------------------------

    def resource_discovery(self) -> AsyncDiscovery:
        """How the resource finds the provider's and the PS's keys: real discovery."""
        ps: Any = self.mockin.url if self.mockin is not None else self._ps_late
        return AsyncDiscovery(
            transport=AsyncMappedTransport({AP: self.provider.app(), PS: ps}, strict=True),
            egress=egress(),
        )

    def start_ps(self) -> None:
        if self.mockin is not None:
            self.mockin.trust(AP, self.provider.metadata().to_json(), self.provider.jwks())
            self.ps_url = self.mockin.url
        else:
            from aauth_agents.servers.person_server import (
                AutoApprove,
                InteractiveConsent,
                PersonServerConfig,
                create_person_server,
            )
            from aauth_agents.servers.person_server.ui import create_person_server_with_ui

            mapping = {AP: self.provider.app(), RESOURCE: self._resource_late}
            asking = self.consent_pages
            config = PersonServerConfig(
                issuer=PS,
                policy=InteractiveConsent() if asking else AutoApprove(),
                default_person=None if asking else "alice",
                password_log2_n=14,
                discovery=AsyncDiscovery(
                    transport=AsyncMappedTransport(mapping, strict=True), egress=egress()
                ),
                transport=AsyncMappedTransport({RESOURCE: self._resource_late}, strict=True),
                # The person's browser comes through a TLS-terminating proxy on loopback
                # (X-Forwarded-Proto: https), which the PS is told to trust.
                trusted_proxies=("127.0.0.1",) if asking else (),
            )
            app = (create_person_server_with_ui if asking else create_person_server)(config)
            app.state.person_server.accounts.create_account("alice", PASSWORD)
            server = self._stack.enter_context(LoopbackServer(app))
            self.ps_url = self._ps_late.target = server.url
        with httpx.Client(transport=MappedTransport({PS: self.ps_url}, strict=True)) as client:
            metadata = client.get(PS + "/.well-known/aauth-person.json").json()
        self.token_path = httpx.URL(metadata["auth_token_endpoint"]).path

    def serve(
        self,
        app: Any,
        *,
        metadata: dict[str, Any] | None = None,
        jwks: dict[str, Any] | None = None,
    ) -> str:
        """Serve the resource on uvicorn; mockin is told its metadata and JWKS."""
        server = self._stack.enter_context(LoopbackServer(app))
        self.resource_url = self._resource_late.target = server.url
        if self.mockin is not None:
            assert metadata is not None and jwks is not None
            self.mockin.trust(RESOURCE, metadata, jwks)
        return self.resource_url

    def close(self) -> None:
        self._stack.close()

    # -- agents --------------------------------------------------------------------------------

    def identity(self, local: str = "assistant") -> AgentIdentity:
        return self.provider.identity(PrivateKey.generate(), f"aauth:{local}@agents.example")

    def auth(self, identity: AgentIdentity | None = None, **options: Any) -> AAuth:
        options.setdefault("prefer_wait", None)
        return AAuth(identity or self.identity(), **options)

    def transport(self) -> Recording:
        """The agent's transport: the resource and the PS, nothing else."""
        return Recording(
            AsyncMappedTransport({RESOURCE: self.resource_url, PS: self.ps_url}, strict=True)
        )

    def plain_client(self) -> httpx.Client:
        """An unsigned client reaching the resource."""
        return httpx.Client(
            transport=MappedTransport({RESOURCE: self.resource_url}, strict=True), timeout=20
        )

    def count_token_exchanges(self, transport: Recording) -> int:
        """Requests the agent sent to the PS's auth token endpoint."""
        return transport.count("ps.example", self.token_path)

    def resource_events(self, kind: str, reason: str | None = None) -> list[ResourceEvent]:
        return [e for e in self.events if e.kind == kind and (reason is None or e.reason == reason)]

    def hook(self) -> Callable[[ResourceEvent], None]:
        return self.events.append


@contextlib.contextmanager
def world_for(ps_kind: str, mockin: Any = None, *, consent_pages: bool = False) -> Iterator[World]:
    world = World(
        ps_kind, mockin=mockin if ps_kind == "mockin" else None, consent_pages=consent_pages
    )
    try:
        world.start_ps()
        yield world
    finally:
        world.close()
