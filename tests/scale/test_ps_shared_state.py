"""Two person server processes' worth of state on one PostgreSQL database (what
``serve ps --workers 2 --database postgresql://...`` runs): two
:class:`~aauth_agents.servers.person_server.PersonServer` instances, each served by uvicorn
on its own loopback port, one agent talking to both. What one limits or changes, the other
sees:

* the poll rate limit (§Polling Error Codes, ``slow_down``) counts the polls of one pending
  URL at both, so N workers do not allow N times the rate;
* a signing key rotated at one is published, and signed with, by the other once its copy
  of the keys is ``key_refresh`` seconds old -- and not before (a client cannot make it
  read the database more often).

The clock is the world's frozen one: the windows are stepped, not waited for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support.ps import PASSWORD, PS, RES, World, make_world, problem

from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import AutoApprove, PersonServer, create_person_server
from aauth_agents.tokens import peek
from aauth_agents.transport import AsyncMappedTransport


@dataclass
class Two:
    """The world (agent provider, resources, frozen clock), the two PS processes' servers
    and a client for each."""

    world: World
    servers: list[PersonServer]
    clients: list[httpx.AsyncClient]

    def at(self, index: int) -> None:
        """Send the agents' requests to PS ``index`` from now on."""
        self.world.client = self.clients[index]

    async def kids(self, index: int) -> set[str]:
        response = await self.clients[index].get(PS + "/.well-known/jwks.json")
        assert response.status_code == 200, response.text
        return {key["kid"] for key in response.json()["keys"]}


Serve = Callable[..., Awaitable[Two]]


@pytest.fixture
async def serve_two(postgres_url: str) -> AsyncIterator[Serve]:
    world = make_world()
    world.database = postgres_url
    running: list[LoopbackServer] = []
    built: list[PersonServer] = []
    clients: list[httpx.AsyncClient] = []

    async def serve(**overrides: Any) -> Two:
        for _ in range(2):
            app = create_person_server(world.config(**overrides))
            built.append(app.state.person_server)
            running.append(LoopbackServer(app).start())
            transport = AsyncMappedTransport({PS: running[-1].url}, strict=True)
            clients.append(httpx.AsyncClient(transport=transport, timeout=30))
        built[0].accounts.create_account("alice", PASSWORD)
        world.attach(running[0].url)  # the resources verify person tokens through the first
        return Two(world, built, clients)

    try:
        yield serve
    finally:
        for server in running:
            server.stop()
        for client in clients:
            await client.aclose()
        await world.close()
        for ps in built:
            ps.close()


async def test_the_poll_limit_holds_across_processes(serve_two: Serve) -> None:
    two = await serve_two()
    agent = two.world.agent()
    pending = await agent.post("/person", {"resource": RES})
    assert pending.status_code == 202, pending.text
    location = pending.headers["location"]
    statuses = []
    for index in range(6):  # alternately at each process: 3 polls each
        two.at(index % 2)
        statuses.append((await agent.get(location)).status_code)
    assert statuses == [202] * 5 + [429]
    slowed = await agent.get(location)
    assert problem(slowed) == "slow_down"
    two.world.clock.advance(1)  # poll_window (default 1 s)
    two.at(0)
    assert (await agent.get(location)).status_code == 202


async def test_a_key_rotated_at_one_process_is_used_by_the_other(serve_two: Serve) -> None:
    two = await serve_two(policy=AutoApprove(), default_person="alice")
    old = two.servers[1].keys.current.kid
    assert old == two.servers[0].keys.current.kid and old is not None
    new = two.servers[0].rotate_signing_key()
    assert await two.kids(0) == {new, old}
    # The other's copy is trusted for key_refresh seconds, whatever requests arrive.
    assert [await two.kids(1) for _ in range(3)] == [{old}] * 3
    two.world.clock.advance(1)  # key_refresh (default 1 s)
    assert await two.kids(1) == {new, old}
    agent = two.world.agent()
    two.at(1)
    issued = await agent.post("/person", {"resource": RES})
    assert issued.status_code == 200, issued.text
    assert peek(issued.json()["person_token"])[0]["kid"] == new
