"""The parties of the agent scenarios against @hellocoop/mockin (interop/test_agent_mockin.py),
also run against our PS behind mockin's interface (interop/test_ps_backend.py).

:class:`Setup`: agent provider keys trusted by the PS, a resource on uvicorn trusted by the PS
(:class:`support.agent.TestResource`), and an agent whose agent token names the PS; clients
that count the requests reaching the PS; polls recorded, not delayed. Its fixtures
(``mode``, ``setup``, ``resource_url``) are in tests/interop/conftest.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx

from aauth_agents.agent import AAuth, AgentIdentity
from aauth_agents.clock import system_clock
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.keys import PrivateKey
from aauth_agents.tokens import StaticIssuerKeys, mint_agent_token
from aauth_agents.transport import AsyncMappedTransport, MappedTransport
from support.agent import AGENT_ID, AP, PS, RESOURCE, ChainKeys, TestResource


class Setup:
    """Agent provider keys trusted by mockin, a resource on uvicorn trusted by mockin, and
    an agent whose agent token names mockin as its PS."""

    def __init__(self, mockin: Any, mode: str) -> None:
        self.mockin = mockin
        self.mode = mode
        self.ap_key = PrivateKey.generate()
        mockin.trust(
            AP,
            {"issuer": AP, "jwks_uri": f"{AP}/.well-known/jwks.json"},
            {"keys": [self.ap_key.public_key.to_jwk()]},
        )
        discovery = AsyncDiscovery(
            transport=AsyncMappedTransport(mockin.mapping, strict=True),
            egress=EgressPolicy.for_mapped_hosts({"ps.example": "127.0.0.1"}, allow_loopback=True),
        )
        keys = ChainKeys(
            StaticIssuerKeys({(AP, "aauth-agent.json"): [self.ap_key.public_key]}), discovery
        )
        self.resource = TestResource(key=PrivateKey.generate(), keys=keys, clock=system_clock)
        mockin.trust(RESOURCE, self.resource.metadata, self.resource.jwks)
        self.agent_key = PrivateKey.generate()
        token = mint_agent_token(
            self.ap_key, iss=AP, sub=AGENT_ID, cnf=self.agent_key.public_key, ps=PS, lifetime=3600
        )
        self.identity = AgentIdentity(self.agent_key, token)
        self.ps_hits: Counter[str] = Counter()
        self.sleeps: list[float] = []
        self.after_sleep: Callable[[], None] | None = None
        self.clients: list[Any] = []

    def sleep(self, seconds: float) -> None:
        """Polls are not actually delayed; the wait is recorded."""
        self.sleeps.append(seconds)
        if self.after_sleep is not None:
            self.after_sleep()

    def auth(self, **options: Any) -> AAuth:
        options.setdefault("sleep", self.sleep)
        return AAuth(self.identity, **options)

    def client(self, auth: httpx.Auth, resource_url: str) -> Any:
        mapping = {**self.mockin.mapping, RESOURCE: resource_url}

        def count(request: httpx.Request) -> None:
            if request.url.host == "ps.example":
                self.ps_hits[request.url.path] += 1

        if self.mode == "sync":
            client: Any = httpx.Client(
                auth=auth,
                event_hooks={"request": [count]},
                transport=MappedTransport(mapping, strict=True),
            )
        else:

            async def acount(request: httpx.Request) -> None:
                count(request)

            client = httpx.AsyncClient(
                auth=auth,
                event_hooks={"request": [acount]},
                transport=AsyncMappedTransport(mapping, strict=True),
            )
        self.clients.append(client)
        return client

    async def request(self, client: Any, method: str, url: str, **kw: Any) -> httpx.Response:
        if isinstance(client, httpx.Client):
            return await anyio.to_thread.run_sync(lambda: client.request(method, url, **kw))
        response: httpx.Response = await client.request(method, url, **kw)
        return response

    async def governance(
        self, auth: AAuth, client: Any, name: str, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(client, httpx.Client):
            gov = auth.governance(client)
            return await anyio.to_thread.run_sync(lambda: getattr(gov, name)(*args, **kwargs))
        return await getattr(auth.async_governance(client), name)(*args, **kwargs)
