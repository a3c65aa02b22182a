"""Governance calls to the person server (§Mission, §Permission Endpoint, §Audit Endpoint,
§Interaction Endpoint) with httpx.Client and httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.agent import AGENT_ID, PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    MissionApproval,
    MissionNotFoundError,
    MissionTerminatedError,
    PermissionResult,
)
from aauth_agents.protocol import ConfigurationError, MissionMismatchError, mission_s256


async def test_propose_mission_and_work_under_it(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    approval = await agent.governance(
        "propose_mission",
        "# Plan a trip\n\nBook flights.",
        tools=["WebSearch", {"name": "BookFlight", "description": "Book flights"}],
        resources=[RESOURCE],
    )
    assert isinstance(approval, MissionApproval)
    assert approval.mission["agent"] == AGENT_ID and approval.mission["approver"] == PS
    assert approval.description.startswith("# Plan a trip")
    assert approval.s256 == mission_s256(world.ps.missions[approval.s256]["blob"])
    assert RESOURCE in approval.person_tokens and "eyJ" not in repr(approval)
    proposal = world.ps.bodies["mission"][0]
    assert proposal["tools"] == [
        {"name": "WebSearch"},
        {"name": "BookFlight", "description": "Book flights"},
    ]
    assert proposal["resources"] == [RESOURCE]
    assert proposal["capabilities"] == ["interaction", "clarification"]  # kept for the mission
    # adopted: the mission names further person tokens, the PS's capabilities are added,
    # and the approval's person token is used as is
    assert agent.auth.mission_s256 == approval.s256
    assert agent.auth.capabilities == ("interaction", "clarification", "payment")
    profile = await agent.get(f"{RESOURCE}/profile")
    assert profile.json()["mission_s256"] == approval.s256
    assert world.ps.hits["person"] == 0
    assert world.resource.seen[-1].capabilities == "interaction, clarification, payment"
    assert all({"content-type", "content-digest"} <= set(c) for c in world.ps.covered)


async def test_mission_with_clarification(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.mission_clarification = "Which dates?"
    asked: list[str] = []

    def on_clarification(question: str, options: object, timeout: object) -> str:
        asked.append(question)
        return "7-14 May"

    agent = make_agent(world.auth(on_clarification=on_clarification), world.mapping)
    approval = await agent.governance("propose_mission", "Plan a trip", adopt=False)
    assert asked == ["Which dates?"]
    assert agent.auth.mission_s256 is None and approval.s256 in world.ps.missions


async def test_tampered_approval_is_refused(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.tamper_mission = True
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(MissionMismatchError):
        await agent.governance("propose_mission", "Plan a trip", resources=[RESOURCE])
    assert agent.auth.mission_s256 is None


async def test_update_complete_and_terminated(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    approval = await agent.governance("propose_mission", "Plan a trip")
    update = await agent.governance("update_mission", "The hotel moved.")
    assert update == mission_s256(world.ps.missions[approval.s256]["updates"][0])
    assert world.ps.bodies["mission-action"][0] == {
        "action": "update",
        "description": "The hotel moved.",
    }
    done = await agent.governance("complete_mission", "Booked everything.")
    assert done["status"] == "terminated"
    assert agent.auth.mission_s256 is None
    with pytest.raises(MissionTerminatedError) as caught:
        await agent.governance("complete_mission", "Again", mission_s256=approval.s256)
    assert caught.value.termination_reason == "completed" and caught.value.status == 403
    with pytest.raises(MissionTerminatedError):
        await agent.governance("audit", "WebSearch", mission_s256=approval.s256)
    agent.auth.mission_s256 = approval.s256
    with pytest.raises(MissionTerminatedError):
        await agent.get(f"{RESOURCE}/profile")


async def test_unknown_mission(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(MissionNotFoundError):
        await agent.governance("update_mission", "x", mission_s256=mission_s256(b"none"))
    with pytest.raises(ConfigurationError):
        await agent.governance("update_mission", "x")  # no mission at all


@pytest.mark.parametrize("decision", ["granted", "denied"])
async def test_permission(world: World, make_agent: Callable[..., Agent], decision: str) -> None:
    world.ps.permission = decision
    agent = make_agent(world.auth(), world.mapping)
    result = await agent.governance(
        "request_permission",
        "SendEmail",
        description="Send the itinerary",
        parameters={"to": "me@example.com"},
    )
    assert isinstance(result, PermissionResult)
    assert result.granted is (decision == "granted")
    assert (result.reason is None) is (decision == "granted")
    assert world.ps.bodies["permission"][0] == {
        "action": "SendEmail",
        "description": "Send the itinerary",
        "parameters": {"to": "me@example.com"},
    }


async def test_audit_and_question(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(ConfigurationError):
        await agent.governance("audit", "WebSearch")  # §Audit Endpoint: needs a mission
    approval = await agent.governance("propose_mission", "Plan a trip")
    assert (
        await agent.governance(
            "audit",
            "WebSearch",
            description="Searched flights",
            parameters={"q": "Tokyo"},
            result={"found": 12},
        )
        is None
    )
    assert world.ps.bodies["audit"][0] == {
        "mission_s256": approval.s256,
        "action": "WebSearch",
        "description": "Searched flights",
        "parameters": {"q": "Tokyo"},
        "result": {"found": 12},
    }
    answer = await agent.governance("ask", "Refundable or not?")
    assert answer == "Yes, go ahead."
    asked = world.ps.bodies["interaction"][0]
    assert asked == {
        "type": "question",
        "question": "Refundable or not?",
        "mission_s256": approval.s256,
    }
