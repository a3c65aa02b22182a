"""The person server on PostgreSQL when PostgreSQL goes away (issue 15): a request during
the outage is answered ``503`` problem+json with ``Retry-After`` (never a 500, never a hung
event loop), and the same request succeeds once PostgreSQL is back, with what was stored
before still there."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from support.ps import PASSWORD, RES, World, make_world, problem
from support.services import PostgresServer

from aauth_agents.servers.person_server import AutoApprove


@pytest.fixture
async def outage() -> AsyncIterator[tuple[World, PostgresServer]]:
    """A PS on a PostgreSQL of its own (to stop and start), approving everything for alice."""
    server = PostgresServer().start()
    world = make_world()
    world.database = server.create_database("ps")
    try:
        world.start(policy=AutoApprove(), default_person="alice")
        assert world.ps is not None
        world.ps.accounts.create_account("alice", PASSWORD)
        yield world, server
    finally:
        await world.close()
        server.stop("immediate")
        shutil.rmtree(server.directory, ignore_errors=True)


async def test_a_postgres_outage_answers_503_then_heals(
    outage: tuple[World, PostgresServer],
) -> None:
    world, server = outage
    agent = world.agent()
    first = await agent.person_token(RES)
    await world.check_person_token(first, agent.public)
    server.stop()
    refused = await agent.post("/person", {"resource": RES})
    assert refused.status_code == 503, refused.text
    assert problem(refused) == "temporarily_unavailable"
    assert refused.headers["retry-after"] == "1"
    server.start()
    again = await agent.person_token(RES)
    claims = await world.check_person_token(again, agent.public)
    # The directed identifier stored before the outage is the one used after it.
    assert claims["sub"] == (await world.check_person_token(first, agent.public))["sub"]
