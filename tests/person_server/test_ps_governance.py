"""§Permission Endpoint, §Audit Endpoint and §Interaction Endpoint over real HTTP."""

from __future__ import annotations

import pytest
from support.ps import PASSWORD, World, problem

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import (
    AutoApprove,
    ConsentRequest,
    Decision,
    RelayNotice,
)

MISSION = {
    "description": "Tidy my inbox",
    "tools": [{"name": "ReadMail", "description": "Read mail"}],
}


async def _open(world: World, response):  # type: ignore[no-untyped-def]
    assert world.ps is not None
    requirement = parse_requirement(response.headers["aauth-requirement"])
    return await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)


# -- permission ----------------------------------------------------------------------------


async def test_permission_granted(auto: World) -> None:
    response = await auto.agent().post(
        "/permission", {"action": "SendEmail", "parameters": {"to": "a@b"}}
    )
    assert response.status_code == 200 and response.json() == {"permission": "granted"}


async def test_permission_denied_by_policy(bare: World) -> None:
    def policy(request: ConsentRequest) -> Decision:
        assert request.kind == "permission" and request.action == "rm -rf"
        return Decision.deny("Not on my disk.")

    bare.start(policy=policy)
    response = await bare.agent().post("/permission", {"action": "rm -rf"})
    assert response.status_code == 200
    assert response.json() == {"permission": "denied", "reason": "Not on my disk."}


async def test_permission_deferred_then_granted(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await agent.post(
        "/permission",
        {
            "action": "SendEmail",
            "description": "Send the itinerary",
            "parameters": {"to": "alice@example.com"},
        },
    )
    assert pending.status_code == 202
    view = await _open(world, pending)
    assert view.kind == "permission"
    assert view.details == {
        "action": "SendEmail",
        "description": "Send the itinerary",
        "parameters": {"to": "alice@example.com"},
    }
    await world.ps.interactions.approve(view.id, "alice")
    granted = await agent.poll(pending)
    assert granted.status_code == 200 and granted.json() == {"permission": "granted"}


async def test_permission_deferred_then_denied(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await agent.post("/permission", {"action": "SendEmail"})
    view = await _open(world, pending)
    await world.ps.interactions.deny(view.id, "Ask me tomorrow.")
    denied = await agent.poll(pending)
    assert denied.status_code == 200
    assert denied.json() == {"permission": "denied", "reason": "Ask me tomorrow."}


async def test_approved_tool_is_granted_without_asking(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    proposed = await agent.post("/mission", MISSION)
    view = await _open(world, proposed)
    await world.ps.interactions.approve(view.id, "alice")
    s256 = (await agent.poll(proposed)).json()["s256"]
    granted = await agent.post("/permission", {"action": "ReadMail", "mission_s256": s256})
    assert granted.status_code == 200 and granted.json() == {"permission": "granted"}
    other = await agent.post("/permission", {"action": "DeleteMail", "mission_s256": s256})
    assert other.status_code == 202
    log = [e.kind for e in await world.ps.mission_log(s256)]
    assert log.count("permission_request") == 2 and log.count("permission_response") == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": ""},
        {"action": "x", "parameters": [1]},
        {"action": "x", "mission_s256": "short"},
    ],
)
async def test_malformed_permission_requests(auto: World, body: dict) -> None:
    response = await auto.agent().post("/permission", body)
    assert response.status_code == 400 and problem(response) == "invalid_request"


# -- audit ---------------------------------------------------------------------------------


async def test_audit_is_recorded_in_the_mission_log(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    s256 = (await agent.post("/mission", MISSION)).json()["s256"]
    response = await agent.post(
        "/audit",
        {
            "mission_s256": s256,
            "action": "WebSearch",
            "description": "Searched flights",
            "parameters": {"q": "flights"},
            "result": {"status": "completed"},
        },
    )
    assert response.status_code == 201 and response.content == b""
    entry = (await auto.ps.mission_log(s256))[-1]
    assert entry.kind == "audit"
    assert {k: v for k, v in entry.data.items() if k != "at"} == {
        "type": "audit",
        "action": "WebSearch",
        "description": "Searched flights",
        "parameters": {"q": "flights"},
        "result": {"status": "completed"},
    }
    assert any(e.name == "audit" and e.mission == s256 for e in auto.events)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "x"},
        {"mission_s256": "A" * 43},
        {"mission_s256": "A" * 43, "action": "x", "result": "ok"},
    ],
)
async def test_malformed_audit_requests(auto: World, body: dict) -> None:
    response = await auto.agent().post("/audit", body)
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_audit_for_an_unknown_mission(auto: World) -> None:
    response = await auto.agent().post("/audit", {"mission_s256": "A" * 43, "action": "x"})
    assert response.status_code == 404 and problem(response) == "mission_not_found"


# -- interaction endpoint ------------------------------------------------------------------


RELAY = {
    "type": "interaction",
    "url": "https://booking.example/confirm",
    "code": "X7K2-M9P4",
    "description": "Confirm the payment",
}


async def test_relay_without_a_channel_is_unavailable(auto: World) -> None:
    response = await auto.agent().post("/interaction", RELAY)
    assert response.status_code == 424 and problem(response) == "interaction_unavailable"


async def test_relay_through_the_person_channel(bare: World) -> None:
    notices: list[RelayNotice] = []

    def channel(notice: RelayNotice) -> bool:
        notices.append(notice)
        return True

    bare.start(policy=AutoApprove(), default_person="alice", relay_channel=channel)
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    response = await agent.post("/interaction", {**RELAY, "type": "payment"})
    assert response.status_code == 202
    assert parse_requirement(response.headers["aauth-requirement"]).value == "approval"
    assert len(notices) == 1
    notice = notices[0]
    assert (notice.type, notice.url, notice.code, notice.agent_id) == (
        "payment",
        RELAY["url"],
        RELAY["code"],
        agent.agent_id,
    )
    assert (await agent.poll(response)).status_code == 202
    await bare.ps.interactions.relay_engaged(notice.pending_id)
    done = await agent.poll(response)
    assert done.status_code == 200 and done.json() == {"status": "engaged"}


async def test_relay_times_out_after_max_wait(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="alice", relay_channel=lambda n: True)
    agent = bare.agent()
    response = await agent.post("/interaction", {**RELAY, "max_wait": 30})
    bare.clock.advance(31)
    timed_out = await agent.get(response.headers["location"])
    assert timed_out.status_code == 408 and problem(timed_out) == "expired"


async def test_relay_channel_that_cannot_reach_the_person(bare: World) -> None:
    bare.start(relay_channel=lambda n: False)
    response = await bare.agent().post("/interaction", RELAY)
    assert response.status_code == 424 and problem(response) == "interaction_unavailable"


async def test_question_answered_by_the_person_at_the_interaction_page(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    response = await agent.post(
        "/interaction", {"type": "question", "question": "Refundable fare?"}
    )
    assert response.status_code == 202
    view = await _open(world, response)
    assert view.kind == "question" and view.details["question"] == "Refundable fare?"
    await world.ps.interactions.answer(view.id, "alice", "Yes, refundable.")
    answered = await agent.poll(response)
    assert answered.status_code == 200 and answered.json() == {"answer": "Yes, refundable."}


async def test_question_through_the_person_channel(bare: World) -> None:
    notices: list[RelayNotice] = []
    bare.start(default_person="alice", relay_channel=lambda n: notices.append(n) or True)
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    response = await agent.post("/interaction", {"type": "question", "question": "Window?"})
    assert parse_requirement(response.headers["aauth-requirement"]).value == "approval"
    assert notices[0].question == "Window?"
    await bare.ps.interactions.answer(notices[0].pending_id, None, "Aisle.")
    assert (await agent.poll(response)).json() == {"answer": "Aisle."}


async def test_question_nobody_can_bring_to_the_person(auto: World) -> None:
    response = await auto.agent().post(
        "/interaction", {"type": "question", "question": "?", "capabilities": ["clarification"]}
    )
    # capabilities is not an interaction-endpoint member; the agent's are unknown -> 202
    assert response.status_code == 202
    agent = auto.agent("restricted")
    mission = await agent.post("/mission", {"description": "x", "capabilities": ["clarification"]})
    s256 = mission.json()["s256"]
    unreachable = await agent.post(
        "/interaction", {"type": "question", "question": "?", "mission_s256": s256}
    )
    assert unreachable.status_code == 403 and problem(unreachable) == "user_unreachable"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "completion"},
        {"type": "interaction"},
        {"type": "interaction", "url": "http://insecure.example/x"},
        {"type": "question"},
        {"type": "interaction", "url": "https://a.example", "max_wait": 0},
    ],
)
async def test_malformed_interaction_requests(auto: World, body: dict) -> None:
    response = await auto.agent().post("/interaction", body)
    assert response.status_code == 400 and problem(response) == "invalid_request"
