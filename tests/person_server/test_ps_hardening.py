"""Idempotence and input hygiene at the person server, over uvicorn on loopback (issue 15):
a mission proposed twice within a second, lone surrogates in bodies, replayed signed
requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.ps import PASSWORD, RES, World, make_world, problem

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.protocol.encoding import b64url_decode
from aauth_agents.servers.loopback import LoopbackServer
from aauth_agents.servers.person_server import AutoApprove, create_person_server

PS = "https://ps.example"
MISSION = {"description": "Tidy my inbox", "resources": [RES]}
LONE = "\ud800"


@pytest.fixture
async def served() -> AsyncIterator[World]:
    """A PS that approves everything for alice, served by uvicorn on 127.0.0.1 (the clock
    is frozen: everything happens within one second)."""
    world = make_world()
    config = world.config(policy=AutoApprove(), default_person="alice")
    app = create_person_server(config)
    world.ps, world.app = app.state.person_server, app
    world.ps.accounts.create_account("alice", PASSWORD)
    try:
        with LoopbackServer(app) as server:
            world.attach(server.url)
            yield world
    finally:
        await world.close()


def _headers(world: World, agent: Any, path: str, body: bytes, later: int = 0) -> dict[str, str]:
    """The headers of a signed POST of ``body``, ``created`` ``later`` seconds on."""
    headers = {"content-type": "application/json"}
    signed = sign_request(
        HttpRequest("POST", PS + path, headers, body),
        key=agent.key,
        signature_key=SignatureKey.from_jwt(agent.token),
        clock=lambda: world.clock() + later,
    )
    return {**headers, **signed}


async def _signed(world: World, agent: Any, path: str, body: bytes, later: int = 0) -> Any:
    headers = _headers(world, agent, path, body, later)
    return await world.client.post(PS + path, content=body, headers=headers)


async def _mission(world: World, agent: Any) -> str:
    response = await agent.post("/mission", {"description": "Plan a trip"})
    assert response.status_code == 200, response.text
    return str(response.json()["s256"])


# -- a mission proposed twice within a second ----------------------------------------------


async def test_a_mission_proposed_twice_within_a_second_is_the_same_mission(
    served: World,
) -> None:
    assert served.ps is not None
    agent = served.agent()
    body = json.dumps(MISSION).encode()
    first = await _signed(served, agent, "/mission", body)
    second = await _signed(served, agent, "/mission", body, later=1)  # (a new signature)
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text  # was: 500 (IntegrityError)
    assert second.json()["s256"] == first.json()["s256"]
    assert second.json()["mission"] == first.json()["mission"]
    assert set(second.json()["person_tokens"]) == {RES}
    s256 = first.json()["s256"]
    log = [entry.kind for entry in await served.ps.mission_log(s256)]
    assert log.count("approved") == 1  # one mission, approved once
    assert [m.s256 for m in await served.ps.missions_for("alice")] == [s256]


async def test_the_same_proposal_from_another_agent_is_another_mission(served: World) -> None:
    """The blob names its agent (§Mission Approval), so two agents never share a mission."""
    one = await served.agent("one").post("/mission", MISSION)
    two = await served.agent("two").post("/mission", MISSION)
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    assert one.json()["s256"] != two.json()["s256"]


async def test_an_identical_blob_owned_by_someone_else_moves_approved_at_on(
    served: World,
) -> None:
    """Should the same blob belong to another owner (here: another person, set by hand),
    the new mission is approved a second later: a mission is one agent's, for one person."""
    assert served.ps is not None
    served.ps.accounts.create_account("bob", PASSWORD)
    agent = served.agent()
    body = json.dumps(MISSION).encode()
    first = await _signed(served, agent, "/mission", body)
    s256 = first.json()["s256"]
    served.ps.db.execute("UPDATE ps_missions SET account = 'bob' WHERE s256 = ?", (s256,))
    second = await _signed(served, agent, "/mission", body, later=1)
    assert second.status_code == 200, second.text
    assert second.json()["s256"] != s256
    blobs = [json.loads(b64url_decode(r.json()["mission"])) for r in (first, second)]
    assert blobs[0]["approved_at"] == "2024-10-29T16:00:00Z"
    assert blobs[1]["approved_at"] == "2024-10-29T16:00:01Z"
    assert {k: v for k, v in blobs[1].items() if k != "approved_at"} == {
        k: v for k, v in blobs[0].items() if k != "approved_at"
    }
    assert [m.s256 for m in await served.ps.missions_for("alice")] == [second.json()["s256"]]


# -- lone surrogates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/mission", {"description": f"Plan {LONE} a trip"}),
        ("/mission", {"description": "Plan", "tools": [{"name": LONE, "description": "x"}]}),
        ("/permission", {"action": "SendEmail", "parameters": {"to": LONE}}),
        ("/permission", {"action": "SendEmail", "description": f"x{LONE}"}),
        ("/interaction", {"type": "question", "question": f"Window {LONE}?"}),
        ("/person", {"resource": RES, "justification": LONE}),
    ],
)
async def test_a_lone_surrogate_is_refused_at_the_edge(
    served: World, path: str, body: dict[str, Any]
) -> None:
    response = await served.agent().post(path, body)  # (json.dumps escapes it: \ud800)
    assert response.status_code == 400, response.text  # was: 500
    assert problem(response) == "invalid_request"


async def test_a_lone_surrogate_in_an_audit_record_is_refused(served: World) -> None:
    assert served.ps is not None
    agent = served.agent()
    s256 = await _mission(served, agent)
    before = len(await served.ps.mission_log(s256))
    response = await agent.post(
        "/audit", {"mission_s256": s256, "action": "WebSearch", "result": {LONE: 1}}
    )
    assert response.status_code == 400, response.text
    assert problem(response) == "invalid_request"
    assert len(await served.ps.mission_log(s256)) == before  # nothing written


# -- replayed requests (§Freshness and Replay) -------------------------------------------------


async def _replayed(world: World, agent: Any, path: str, body: bytes) -> tuple[Any, Any]:
    """Send one signed request twice, byte for byte."""
    headers = _headers(world, agent, path, body)
    first = await world.client.post(PS + path, content=body, headers=headers)
    again = await world.client.post(PS + path, content=body, headers=headers)
    return first, again


@pytest.mark.parametrize("path", ["/audit", "/permission"])
async def test_a_replayed_request_writes_the_mission_log_once(served: World, path: str) -> None:
    assert served.ps is not None
    agent = served.agent()
    s256 = await _mission(served, agent)
    body = f'{{"mission_s256": "{s256}", "action": "WebSearch"}}'.encode()
    before = len(await served.ps.mission_log(s256))
    first, again = await _replayed(served, agent, path, body)
    assert first.status_code in (200, 201), first.text
    assert again.status_code == 401, again.text  # was: accepted a second time
    assert problem(again) == "invalid_signature"
    assert "invalid_signature" in again.headers["signature-error"]
    written = len(await served.ps.mission_log(s256)) - before
    assert written == (1 if path == "/audit" else 2)  # (a permission: request + response)


async def test_a_replayed_mission_proposal_and_question_are_refused(served: World) -> None:
    assert served.ps is not None
    agent = served.agent()
    first, again = await _replayed(served, agent, "/mission", b'{"description": "Once"}')
    assert first.status_code == 200 and again.status_code == 401, again.text
    assert len(await served.ps.missions_for("alice")) == 1
    body = b'{"type": "question", "question": "Window?", "capabilities": ["clarification"]}'
    first, again = await _replayed(served, agent, "/interaction", body)
    assert first.status_code != 401 and again.status_code == 401, (first.text, again.text)


async def test_a_person_token_request_sent_twice_in_a_second_is_answered_twice(
    served: World,
) -> None:
    """The same request from two processes of one agent (one key): not a replay to refuse --
    what it gets is bound to the agent's key."""
    agent = served.agent()
    first, again = await _replayed(served, agent, "/person", f'{{"resource": "{RES}"}}'.encode())
    assert first.status_code == again.status_code == 200, again.text
