"""The person's side beyond the basics: resource-initiated interaction and its callback errors,
``prompt``, ``mark_interacting`` (engaging and claiming), clarification options, threads for the
database, purging, and that no token or password reaches an event or a log line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.ps import PASSWORD, PS, RES, Agent, World, problem

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import AutoApprove, InteractionError
from aauth_agents.servers.person_server.ui_sessions import UISessions
from aauth_agents.tokens import peek


async def resource_initiated(world: World, agent: Agent):  # type: ignore[no-untyped-def]
    """A token request whose resource token carries an ``interaction`` claim."""
    person = await agent.person_token()
    rt = await world.resource.resource_token(
        person,
        agent.public,
        "data.read",
        interaction={"url": "https://resource.example/connect", "code": "RES-CODE-1"},
    )
    pending = await agent.post("/token", {"resource_token": rt})
    assert pending.status_code == 202, pending.text
    assert world.ps is not None
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    return pending, view


async def test_resource_initiated_interaction_before_the_ps_consent(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    pending, view = await resource_initiated(auto, agent)  # even under AutoApprove
    assert view.resource_interaction == {
        "url": "https://resource.example/connect",
        "code": "RES-CODE-1",
        "state": "pending",
    }
    with pytest.raises(InteractionError):  # the resource's flow comes first
        await auto.ps.interactions.approve(view.id, "alice")
    redirect = await auto.ps.interactions.resource_redirect(view.id)
    parts = urlsplit(redirect)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://resource.example/connect"
    assert query["code"] == ["RES-CODE-1"]
    callback = query["callback"][0]
    assert callback.startswith(f"{PS}/interact/callback/{view.id}/")
    nonce = callback.rsplit("/", 1)[1]
    with pytest.raises(InteractionError):
        await auto.ps.interactions.resource_callback(view.id, "wrong-nonce")
    done = await auto.ps.interactions.resource_callback(view.id, nonce)
    assert done.resource_interaction is not None and done.resource_interaction["state"] == "done"
    await auto.ps.interactions.approve(view.id, "alice")
    granted = await agent.poll(pending)
    assert granted.status_code == 200, granted.text
    assert peek(granted.json()["auth_token"])[1]["scope"] == "data.read"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ("access_denied", 403, "denied"),
        ("user_abandoned", 403, "abandoned"),
        ("interaction_expired", 408, "expired"),
        ("server_error", 500, "server_error"),
        ("temporarily_unavailable", 500, "server_error"),
    ],
)
async def test_resource_callback_errors_map_to_polling_errors(
    auto: World, error: str, status: int, code: str
) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    pending, view = await resource_initiated(auto, agent)
    redirect = await auto.ps.interactions.resource_redirect(view.id)
    nonce = parse_qs(urlsplit(redirect).query)["callback"][0].rsplit("/", 1)[1]
    await auto.ps.interactions.resource_callback(view.id, nonce, error)
    polled = await agent.poll(pending)
    assert polled.status_code == status and problem(polled) == code


async def test_prompt_consent_asks_again(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    await world.ps.run(
        world.ps.state.remember_consent,
        "alice",
        "https://agents.example",
        agent.agent_id,
        RES,
        "person_token",
        None,
        (),
        world.clock(),
    )
    assert (await agent.post("/person", {"resource": RES})).status_code == 200
    again = await agent.post(
        "/person", {"resource": RES, "prompt": "login consent", "login_hint": "alice"}
    )
    assert again.status_code == 202
    requirement = parse_requirement(again.headers["aauth-requirement"])
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    assert view.prompt == ("login", "consent") and view.login_hint == "alice"


async def test_prompt_none_never_asks(world: World) -> None:
    response = await world.agent().post("/person", {"resource": RES, "prompt": "none"})
    assert response.status_code == 403 and problem(response) == "user_unreachable"


async def test_mark_interacting_keeps_the_code_until_the_decision(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await agent.post("/person", {"resource": RES})
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    interaction_id = requirement.url.rsplit("/", 1)[1]
    record = await world.ps.run(world.ps.pending.get_by_interaction, interaction_id)
    assert record is not None
    view = await world.ps.interactions.mark_interacting(record.id)
    assert view.state == "interacting"
    assert (await agent.poll(pending)).json() == {"status": "interacting"}
    # The link still finds the request (another browser, a closed tab) ...
    found = await world.ps.interactions.lookup(interaction_id, requirement.code)
    assert found.id == record.id
    await world.ps.interactions.deny(record.id)
    # ... until the decision spends the code.
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.lookup(interaction_id, requirement.code)
    assert raised.value.code == "invalid_code"


async def test_the_person_who_engages_claims_a_new_agents_request(world: World) -> None:
    """A new agent's request (no binding, no ``default_person``) becomes the request of the
    signed-in person who engages with it: listed for them, refused to anyone else."""
    assert world.ps is not None
    world.ps.accounts.create_account("bob", PASSWORD)
    agent = world.agent()
    pending = await agent.post("/person", {"resource": RES})
    record = await world.ps.run(
        world.ps.pending.get_by_interaction,
        parse_requirement(pending.headers["aauth-requirement"]).url.rsplit("/", 1)[1],
    )
    assert record is not None and record.owner is None
    now = world.clock()
    assert await world.ps.pending.aopen_for_owner("alice", now) == []
    await world.ps.interactions.mark_interacting(record.id, "alice")
    assert [r.id for r in await world.ps.pending.aopen_for_owner("alice", now)] == [record.id]
    for decide in (
        world.ps.interactions.mark_interacting(record.id, "bob"),
        world.ps.interactions.approve(record.id, "bob"),
    ):
        with pytest.raises(InteractionError) as raised:
            await decide
        assert raised.value.code == "access_denied" and raised.value.status == 403
    assert await world.ps.pending.aopen_for_owner("bob", now) == []
    assert (await agent.poll(pending)).json() == {"status": "interacting"}
    await world.ps.interactions.approve(record.id, "alice")
    assert (await agent.poll(pending)).status_code == 200


async def test_clarification_options_reach_the_agent(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await agent.post(
        "/person", {"resource": RES, "capabilities": ["interaction", "clarification"]}
    )
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    assert view.state == "pending"  # opening the link is not engaging
    asked_view = await world.ps.interactions.ask(
        view.id, "Which account?", options=["work", "home"]
    )
    assert asked_view.state == "interacting"  # asking is: the agent hears interacting
    asked = await agent.poll(pending)
    assert asked.json()["options"] == ["work", "home"]


async def test_database_in_worker_threads(bare: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bare.start(
        policy=AutoApprove(), default_person="alice", database=tmp_path, database_threads=True
    )
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    person = await agent.person_token()
    rt = await bare.resource.resource_token(person, agent.public)
    granted = await agent.post("/token", {"resource_token": rt})
    assert granted.status_code == 200, granted.text
    await bare.check_auth_token(
        granted.json()["auth_token"],
        agent.public,
        sub=peek(person)[1]["sub"],
        scope="data.read",
        not_after=agent.exp,
    )


async def test_purge_forgets_finished_pending_records(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await agent.post("/person", {"resource": RES})
    await agent.delete(pending.headers["location"])
    world.clock.advance(600 + 3600)
    assert await world.ps.purge() >= 1
    agent.refresh()
    assert (await agent.get(pending.headers["location"])).status_code == 404


async def _abandoned_request(world: World) -> tuple[Agent, str]:
    agent = world.agent()
    pending = await agent.post("/person", {"resource": RES})
    location = pending.headers["location"]
    assert (await agent.delete(location)).status_code == 204
    return agent, location


async def _purged(world: World, agent: Agent, location: str) -> bool:
    """Whether ``location`` is gone, after letting background work run (bounded)."""
    assert world.ps is not None
    for _ in range(200):
        if not world.ps._tasks:
            break
        await asyncio.sleep(0.01)
    agent.refresh()
    return (await agent.get(location)).status_code == 404


async def test_housekeeping_purges_once_due_after_a_request(bare: World) -> None:
    ps = bare.start(purge_interval=600)
    agent, location = await _abandoned_request(bare)
    bare.clock.advance(599)
    other = bare.agent("other")
    await other.post("/person", {"resource": RES})  # not due yet: nothing is forgotten
    assert not await _purged(bare, agent, location)
    bare.clock.advance(600 + 3600)  # the abandoned record is past purge_at
    await other.post("/person", {"resource": RES})  # any protocol request starts the pass
    assert await _purged(bare, agent, location)
    assert ps._purges.next == bare.clock() + 600


async def test_housekeeping_off_keeps_records_until_purge(bare: World) -> None:
    ps = bare.start(purge_interval=0)
    agent, location = await _abandoned_request(bare)
    bare.clock.advance(600 + 3600)
    await bare.agent("other").post("/person", {"resource": RES})
    assert not await _purged(bare, agent, location)
    assert await ps.purge() >= 1
    assert await _purged(bare, agent, location)


async def test_purge_forgets_expired_browser_sessions(world: World) -> None:
    assert world.ps is not None
    sessions = UISessions(world.ps.db)
    sessions.create(world.clock(), ttl=60, max_sessions=10)
    live = sessions.create(world.clock() + 30, ttl=60, max_sessions=10)
    world.clock.advance(61)
    assert await world.ps.purge() >= 1
    assert sessions.count() == 1
    assert sessions.load(live.id, world.clock(), ttl=60) is not None


async def test_no_token_or_password_in_events_or_logs(
    auto: World, caplog: pytest.LogCaptureFixture
) -> None:
    assert auto.ps is not None
    caplog.set_level(logging.DEBUG)
    agent = auto.agent()
    person = await agent.person_token()
    rt = await auto.resource.resource_token(person, agent.public, "data.read")
    token = (await agent.post("/token", {"resource_token": rt})).json()["auth_token"]
    await auto.ps.accounts.aauthenticate("alice", PASSWORD)
    await auto.ps.accounts.aauthenticate("alice", "wrong " + PASSWORD)
    secrets_seen = [agent.token, person, rt, token, PASSWORD]
    dumped: list[Any] = [repr(e) for e in auto.events] + [r.getMessage() for r in caplog.records]
    for text in dumped:
        assert "eyJ" not in text
        for secret in secrets_seen:
            assert secret not in text
    assert {e.name for e in auto.events} >= {"issued_person_token", "issued_auth_token", "bound"}
