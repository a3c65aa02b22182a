"""§Mission over real HTTP: proposal, approval (blob, ``s256``, ``person_tokens``), update,
completion accepted by the person, termination reasons, the mission log, and identical
answers for an unknown mission and one the agent does not own."""

from __future__ import annotations

import hashlib
import json

import pytest
from support.ps import DOCS, PASSWORD, PS, RES, World, problem

from aauth_agents.protocol.encoding import b64url_encode
from aauth_agents.protocol.mission import verify_mission_approval
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import AutoApprove
from aauth_agents.tokens import peek

PROPOSAL = {
    "description": "# Plan a trip\n\nBook flights and a hotel.",
    "tools": [
        {"name": "WebSearch", "description": "Search the web"},
        {"name": "BookFlight", "description": "Book flights"},
    ],
    "resources": [RES, DOCS],
}


async def test_mission_approved_by_the_person_with_changes(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    proposed = await agent.post("/mission", {**PROPOSAL, "justification": "you asked me to"})
    assert proposed.status_code == 202
    requirement = parse_requirement(proposed.headers["aauth-requirement"])
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    assert view.kind == "mission" and view.mission is not None
    assert view.mission.description == PROPOSAL["description"]
    assert [t["name"] for t in view.mission.tools] == ["WebSearch", "BookFlight"]
    assert view.mission.resources == (RES, DOCS)
    await world.ps.interactions.approve(
        view.id,
        "alice",
        description="# Plan a trip\n\nFlights only.",
        tools=[{"name": "WebSearch"}, {"name": "NotProposed"}],
        resources=[RES],
    )
    approved = await agent.poll(proposed)
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert set(body) == {"s256", "mission", "person_tokens"}
    blob, s256 = verify_mission_approval(body)
    assert blob == {
        "approver": PS,
        "agent": agent.agent_id,
        "approved_at": "2024-10-29T16:00:00Z",
        "description": "# Plan a trip\n\nFlights only.",
        "approved_tools": [{"name": "WebSearch", "description": "Search the web"}],
        "approved_resources": [RES],
    }
    assert list(body["person_tokens"]) == [RES]
    await world.check_person_token(
        body["person_tokens"][RES], agent.public, mission=s256, not_after=agent.exp
    )
    mission = await world.ps.mission(s256)
    assert mission is not None and mission.account == "alice" and mission.state == "active"
    # The PS serves the exact bytes s256 covers.
    assert b64url_encode(hashlib.sha256(mission.blob).digest()) == s256
    # A person token for an approved resource within the mission needs no new consent.
    again = await agent.post("/person", {"resource": RES, "mission_s256": s256})
    assert again.status_code == 200, again.text
    # One outside the approved resources is asked.
    other = await agent.post("/person", {"resource": DOCS, "mission_s256": s256})
    assert other.status_code == 202


async def test_mission_lifetime_bounds_every_token(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="alice", mission_lifetime=1800)
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    response = await agent.post("/mission", PROPOSAL)
    assert response.status_code == 200, response.text
    blob, s256 = verify_mission_approval(response.json())
    assert blob["expires_at"] == "2024-10-29T16:30:00Z"
    expires = bare.clock() + 1800
    assert response.json()["person_tokens"].keys() == {RES, DOCS}
    await bare.check_person_token(
        response.json()["person_tokens"][RES], agent.public, mission=s256, not_after=expires
    )
    bare.clock.advance(1000)
    person = await agent.person_token(RES, mission_s256=s256)
    await bare.check_person_token(person, agent.public, mission=s256, not_after=expires)
    rt = await bare.resource.resource_token(
        person, agent.public, "data.read", mission_expires_at=expires
    )
    granted = await agent.post("/token", {"resource_token": rt})
    assert granted.status_code == 200, granted.text
    await bare.check_auth_token(
        granted.json()["auth_token"],
        agent.public,
        sub=peek(person)[1]["sub"],
        scope="data.read",
        mission=s256,
        not_after=expires,
    )
    # Past expires_at the mission is terminated with reason expired.
    bare.clock.advance(801)
    agent.refresh()
    late = await agent.post("/person", {"resource": RES, "mission_s256": s256})
    assert late.status_code == 403 and problem(late) == "mission_terminated"
    assert late.json()["mission_status"] == "terminated"
    assert late.json()["termination_reason"] == "expired"


async def test_update_is_logged_and_identified(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    s256 = (await agent.post("/mission", PROPOSAL)).json()["s256"]
    response = await agent.post(
        f"/mission/{s256}", {"action": "update", "description": "Hotel is full."}
    )
    assert response.status_code == 200, response.text
    digest = response.json()["s256"]
    log = await auto.ps.mission_log(s256)
    updates = [e for e in log if e.kind == "update"]
    assert len(updates) == 1 and updates[0].entry_s256 == digest
    assert b64url_encode(hashlib.sha256(updates[0].entry).digest()) == digest
    assert json.loads(updates[0].entry)["description"] == "Hotel is full."
    # The mission itself is unchanged.
    mission = await auto.ps.mission(s256)
    assert mission is not None and mission.state == "active"


async def test_update_reviewed_by_the_person(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    s256 = await _approved_mission(world, agent)
    pending = await agent.post(f"/mission/{s256}", {"action": "update", "description": "More"})
    assert pending.status_code == 202
    view = await _open(world, pending)
    assert view.kind == "mission_update" and view.details["description"] == "More"
    assert view.mission is not None and view.mission.s256 == s256
    await world.ps.interactions.approve(view.id, "alice")
    accepted = await agent.poll(pending)
    assert accepted.status_code == 200 and set(accepted.json()) == {"s256"}


async def _open(world: World, response):  # type: ignore[no-untyped-def]
    assert world.ps is not None
    requirement = parse_requirement(response.headers["aauth-requirement"])
    return await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)


async def _approved_mission(world: World, agent, **extra) -> str:  # type: ignore[no-untyped-def]
    assert world.ps is not None
    proposed = await agent.post("/mission", {**PROPOSAL, **extra})
    view = await _open(world, proposed)
    await world.ps.interactions.approve(view.id, "alice")
    return str((await agent.poll(proposed)).json()["s256"])


async def test_completion_accepted_by_the_person(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    s256 = await _approved_mission(world, agent, capabilities=["interaction", "clarification"])
    pending = await agent.post(
        f"/mission/{s256}", {"action": "completion", "summary": "Booked. $4,180."}
    )
    assert pending.status_code == 202
    view = await _open(world, pending)
    assert view.kind == "mission_completion" and view.details["summary"] == "Booked. $4,180."
    # The person asks a follow-up question first; the mission stays active meanwhile.
    await world.ps.interactions.ask(view.id, "Did you book the hotel too?")
    asked = await agent.poll(pending)
    assert asked.json()["clarification"] == "Did you book the hotel too?"
    await agent.post(
        pending.headers["location"],
        {"action": "clarification_response", "clarification_response": "Yes."},
    )
    mission = await world.ps.mission(s256)
    assert mission is not None and mission.state == "active"
    await world.ps.interactions.approve(view.id, "alice")
    done = await agent.poll(asked)
    assert done.status_code == 200
    assert done.json() == {"mission_status": "terminated", "termination_reason": "completed"}
    mission = await world.ps.mission(s256)
    assert mission is not None and mission.state == "terminated"
    assert mission.termination_reason == "completed"
    refused = await agent.post("/audit", {"mission_s256": s256, "action": "x"})
    assert refused.status_code == 403 and problem(refused) == "mission_terminated"
    assert refused.json()["termination_reason"] == "completed"
    kinds = [e.kind for e in await world.ps.mission_log(s256)]
    for kind in (
        "approved",
        "completion_proposed",
        "clarification_question",
        "clarification",
        "completion",
        "terminated",
    ):
        assert kind in kinds


async def test_completion_declined_leaves_the_mission_active(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    s256 = await _approved_mission(world, agent)
    pending = await agent.post(f"/mission/{s256}", {"action": "completion", "summary": "done"})
    view = await _open(world, pending)
    await world.ps.interactions.deny(view.id, "the hotel is missing")
    refused = await agent.poll(pending)
    assert refused.status_code == 403 and problem(refused) == "denied"
    mission = await world.ps.mission(s256)
    assert mission is not None and mission.state == "active"


@pytest.mark.parametrize("reason", ["revoked", "superseded", "administrative", "custom-reason"])
async def test_termination_reasons(auto: World, reason: str) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    s256 = (await agent.post("/mission", PROPOSAL)).json()["s256"]
    ended = await auto.ps.terminate_mission(s256, reason)
    assert ended is not None and ended.termination_reason == reason
    assert await auto.ps.terminate_mission(s256, "completed") is None  # never reactivated
    for path, body in (
        ("/person", {"resource": RES, "mission_s256": s256}),
        ("/permission", {"action": "x", "mission_s256": s256}),
        (f"/mission/{s256}", {"action": "update", "description": "x"}),
    ):
        response = await agent.post(path, body)
        assert response.status_code == 403 and problem(response) == "mission_terminated"
        assert response.json()["termination_reason"] == reason
        assert "signature-error" not in response.headers


async def test_unknown_and_foreign_missions_answer_identically(auto: World) -> None:
    owner, other = auto.agent("owner"), auto.agent("other")
    s256 = (await owner.post("/mission", PROPOSAL)).json()["s256"]
    unknown = b64url_encode(hashlib.sha256(b"no such mission").digest())
    answers = []
    for target in (unknown, s256):
        response = await other.post(f"/mission/{target}", {"action": "update", "description": "x"})
        answers.append((response.status_code, sorted(response.headers.items()), response.content))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
    body = json.loads(answers[0][2])
    assert body["error"] == "mission_not_found"
    for path, body in (
        ("/person", {"resource": RES, "mission_s256": s256}),
        ("/audit", {"mission_s256": s256, "action": "x"}),
    ):
        foreign = await other.post(path, body)
        assert foreign.status_code == 404 and problem(foreign) == "mission_not_found"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/mission/not-a-digest", {"action": "update", "description": "x"}),
        (None, {"description": "x"}),
        (None, {"action": "rename", "description": "x"}),
        (None, {"action": "update"}),
        (None, {"action": "completion", "description": "not a summary"}),
    ],
)
async def test_malformed_mission_requests(auto: World, path: str | None, body: dict) -> None:
    agent = auto.agent()
    s256 = (await agent.post("/mission", PROPOSAL)).json()["s256"]
    response = await agent.post(path or f"/mission/{s256}", body)
    assert response.status_code == 400 and problem(response) == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"description": ""},
        {"description": "x", "tools": [{"description": "nameless"}]},
        {"description": "x", "tools": [{"name": "a"}, {"name": "a"}]},
        {"description": "x", "resources": ["http://insecure.example"]},
        {"description": "x", "resources": "https://resource.example"},
    ],
)
async def test_malformed_mission_proposals(auto: World, body: dict) -> None:
    response = await auto.agent().post("/mission", body)
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_mission_log_records_the_agents_requests(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    s256 = (await agent.post("/mission", PROPOSAL)).json()["s256"]
    person = await agent.person_token(RES, mission_s256=s256, justification="for the trip")
    rt = await auto.resource.resource_token(person, agent.public, "data.read")
    await agent.post("/token", {"resource_token": rt, "justification": "read the itinerary"})
    await agent.post("/permission", {"action": "SendEmail", "mission_s256": s256})
    await agent.post(
        "/audit", {"mission_s256": s256, "action": "WebSearch", "result": {"found": 12}}
    )
    log = await auto.ps.mission_log(s256)
    kinds = [e.kind for e in log]
    assert kinds == [
        "approved",
        "person_token",
        "person_token",
        "person_token_request",
        "person_token",
        "auth_token_request",
        "auth_token",
        "permission_request",
        "permission_response",
        "audit",
    ]
    token_request = next(e for e in log if e.kind == "auth_token_request").data
    assert token_request["justification"] == "read the itinerary"
    assert token_request["scope"] == "data.read"
    audit = log[-1].data
    assert audit["action"] == "WebSearch" and audit["result"] == {"found": 12}
