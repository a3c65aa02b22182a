"""The person server on PostgreSQL (issue 15): two PS workers share one database -- a request
pending at one is decided and collected at the other, with one signing key -- and when
PostgreSQL goes away a request is answered ``503`` problem+json with ``Retry-After`` (never a
500, never a hung event loop), and succeeds once PostgreSQL is back, with what was stored
before still there."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from support.ps import PASSWORD, PS, RES, World, make_world, problem
from support.services import PostgresServer
from support.ui import start_ui

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import AutoApprove, create_person_server


async def test_a_request_pending_at_one_worker_completes_at_another(postgres_url: str) -> None:
    world = make_world()
    world.database = postgres_url
    first = world.start()  # interactive consent
    first.accounts.create_account("alice", PASSWORD)
    second_app = create_person_server(world.config())
    second = second_app.state.person_server
    try:
        assert second.keys.current.kid == first.keys.current.kid  # one key for both workers
        agent = world.agent()
        pending = await agent.post("/person", {"resource": RES})
        assert pending.status_code == 202, pending.text
        requirement = parse_requirement(pending.headers["aauth-requirement"])
        assert requirement.url is not None and requirement.code is not None
        # The person's browser reaches the second worker; the first one goes away.
        view = await second.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
        await second.interactions.approve(view.id, "alice")
        await first.aclose()
        world.attach(second_app)
        polled = await agent.poll(pending)
        assert polled.status_code == 200, polled.text
        token = polled.json()["person_token"]
        await world.check_person_token(token, agent.public, not_after=agent.exp)
    finally:
        await second.aclose()
        await world.close()


@pytest.fixture
async def outage() -> AsyncIterator[tuple[World, PostgresServer]]:
    """A PS with its pages on a PostgreSQL of its own (to stop and start), approving
    everything for alice."""
    server = PostgresServer().start()
    world = make_world()
    world.database = server.create_database("ps")
    try:
        start_ui(world, policy=AutoApprove(), default_person="alice")  # alice has an account
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
    page = await world.client.get(PS + "/signin")  # a page with a session: 503, not 500
    assert page.status_code == 503 and page.headers["retry-after"] == "1", page.text
    server.start()
    assert (await world.client.get(PS + "/signin")).status_code == 200
    again = await agent.person_token(RES)
    claims = await world.check_person_token(again, agent.public)
    # The directed identifier stored before the outage is the one used after it.
    assert claims["sub"] == (await world.check_person_token(first, agent.public))["sub"]
