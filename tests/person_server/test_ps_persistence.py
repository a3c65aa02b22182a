"""The PS on a real SQLite file, restarted in the middle of an interaction, and the PS over
uvicorn on loopback."""

from __future__ import annotations

import asyncio

from support.ps import PASSWORD, PS, RES, World

from aauth_agents.protocol.encoding import b64url_decode
from aauth_agents.protocol.mission import verify_mission_approval
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import AutoApprove, create_person_server
from aauth_agents.tokens import peek


async def test_restart_in_the_middle_of_an_interaction_loses_nothing(bare: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ps = bare.start(database=tmp_path)
    ps.accounts.create_account("alice", PASSWORD, claims={"email": "alice@example.com"})
    agent = bare.agent()
    # The person token: first issuance needs the person.
    first = await agent.post("/person", {"resource": RES})
    requirement = parse_requirement(first.headers["aauth-requirement"])
    view = await ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    await ps.interactions.approve(view.id, "alice")
    person = (await agent.poll(first)).json()["person_token"]
    rt = await bare.resource.resource_token(person, agent.public, "openid email data.read")
    # The auth token request is deferred to the person...
    pending = await agent.post("/token", {"resource_token": rt, "justification": "backup"})
    assert pending.status_code == 202
    assert (await agent.poll(pending)).json() == {"status": "pending"}
    kid = ps.keys.current.kid
    # ...and the PS goes down.
    await ps.aclose()

    restarted = bare.start(database=tmp_path)
    assert restarted is not ps and restarted.keys.current.kid == kid
    assert restarted.accounts.authenticate("alice", PASSWORD) is not None
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    view = await restarted.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    assert view.kind == "auth_token" and view.justification == "backup"
    assert view.account == "alice" and not view.new_agent
    await restarted.interactions.approve(view.id, "alice")
    done = await agent.poll(pending)
    assert done.status_code == 200, done.text
    await bare.check_auth_token(
        done.json()["auth_token"],
        agent.public,
        sub=peek(person)[1]["sub"],
        scope="openid email data.read",
        extra={"email": "alice@example.com"},
        not_after=agent.exp,
    )
    # The consents and the directed sub survived too: the next person token is immediate
    # and names the same person.
    again = await agent.person_token()
    assert peek(again)[1]["sub"] == peek(person)[1]["sub"]


async def test_pending_approval_survives_a_restart(bare: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ps = bare.start(database=tmp_path)
    ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    ps.bind_agent(agent.agent_id, "alice")
    proposed = await agent.post("/mission", {"description": "Persist me", "resources": [RES]})
    assert proposed.status_code == 202
    await ps.aclose()
    restarted = bare.start(database=tmp_path)
    requirement = parse_requirement(proposed.headers["aauth-requirement"])
    view = await restarted.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    await restarted.interactions.approve(view.id, "alice")
    await restarted.aclose()
    again = bare.start(database=tmp_path)
    approved = await agent.poll(proposed)
    assert approved.status_code == 200, approved.text
    blob, s256 = verify_mission_approval(approved.json())
    assert blob["description"] == "Persist me"
    mission = await again.mission(s256)
    assert mission is not None
    assert mission.blob == b64url_decode(approved.json()["mission"])
    assert mission.approved_resources == (RES,) and mission.account == "alice"
    assert RES in approved.json()["person_tokens"]
    assert [e.kind for e in await again.mission_log(s256)][:1] == ["approved"]


async def test_over_uvicorn_on_loopback(bare: World) -> None:
    config = bare.config(policy=AutoApprove(), default_person="alice")
    app = create_person_server(config)
    ps = app.state.person_server
    bare.ps, bare.app = ps, app
    ps.accounts.create_account("alice", PASSWORD)
    with LoopbackServer(app) as server:
        bare.attach(server.url)
        metadata = await bare.client.get(f"{PS}/.well-known/aauth-person.json")
        assert metadata.status_code == 200 and metadata.json()["issuer"] == PS
        agent = bare.agent()
        person = await agent.person_token()
        await bare.check_person_token(person, agent.public, not_after=agent.exp)
        rt = await bare.resource.resource_token(person, agent.public, "data.read")
        granted = await agent.post("/token", {"resource_token": rt})
        assert granted.status_code == 200, granted.text
        await bare.check_auth_token(
            granted.json()["auth_token"],
            agent.public,
            sub=peek(person)[1]["sub"],
            scope="data.read",
            not_after=agent.exp,
        )
        mission = await agent.post("/mission", {"description": "over the wire"})
        s256 = mission.json()["s256"]
        audited = await agent.post("/audit", {"mission_s256": s256, "action": "x"})
        assert audited.status_code == 201


async def test_long_poll_over_uvicorn_wakes_on_a_decision_from_another_loop(bare: World) -> None:
    """The person decides in this event loop while the agent's poll waits in uvicorn's."""
    app = create_person_server(bare.config())
    ps = app.state.person_server
    bare.ps, bare.app = ps, app
    ps.accounts.create_account("alice", PASSWORD)
    with LoopbackServer(app) as server:
        bare.attach(server.url)
        agent = bare.agent()
        pending = await agent.post("/person", {"resource": RES})
        requirement = parse_requirement(pending.headers["aauth-requirement"])
        view = await ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)

        async def person() -> None:
            await asyncio.sleep(0.1)
            await ps.interactions.approve(view.id, "alice")

        polled, _ = await asyncio.gather(
            agent.get(pending.headers["location"], headers={"Prefer": "wait=25"}), person()
        )
        assert polled.status_code == 200, polled.text
        assert "person_token" in polled.json()
