"""§Deferred Responses at the person server: approval, interaction, clarification, the
polling rules (Location, Retry-After, 429, Prefer: wait, max_poll_seconds) and every
terminal error as its typed error. Each test runs with httpx.Client and httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support.agent import PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    CANCEL,
    AbandonedError,
    DeferredResponseError,
    DeniedError,
    ExpiredError,
    FlowEvent,
    InvalidCodeError,
    InvalidRequestError,
    PollTimeoutError,
    RequestCancelledError,
    ServerError,
    UnknownPersonTokenError,
    UnsupportedRequirementError,
    UpdatedRequest,
    UserUnreachableError,
)
from aauth_agents.agent.errors import AgentProtocolError
from aauth_agents.protocol import ProtocolError


async def test_deferred_person_token_with_approval(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 3
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    assert world.ps.hits["pending-GET"] == 3
    assert world.sleeps == [0, 0, 0]
    assert world.ps.prefer[1:] == [30, 30, 30]  # Prefer: wait on every poll


async def test_interaction_at_the_person_server(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    shown: list[tuple[str, str]] = []

    def on_interaction(url: str, code: str) -> None:
        shown.append((url, code))
        assert world.ps.consent(code)

    agent = make_agent(world.auth(on_interaction=on_interaction), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert len(shown) == 1 and shown[0][0] == f"{PS}/consent"
    assert world.ps.hits["interaction"] == 0  # the PS's own interaction is not relayed


async def test_person_arrives_later_and_is_prompted_once(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    world.ps.retry_after = "2"
    shown: list[str] = []
    agent = make_agent(
        world.auth(on_interaction=lambda url, code: shown.append(code)), world.mapping
    )
    original = world.sleep

    def sleep(seconds: float) -> None:
        original(seconds)
        if len(world.sleeps) == 3:
            world.ps.consent(shown[0])

    agent.auth.runtime.sleep = sleep
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert len(shown) == 1 and world.sleeps == [2, 2, 2]


async def test_interacting_status_is_not_prompted(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    world.ps.interacting = True
    shown: list[str] = []
    agent = make_agent(
        world.auth(on_interaction=lambda url, code: shown.append(code)), world.mapping
    )

    def sleep(seconds: float) -> None:
        world.sleep(seconds)
        for entry in world.ps.pending.values():
            entry.approved = True

    agent.auth.runtime.sleep = sleep
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert shown == []


async def test_clarification_answered(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.token_requirement = "clarification"
    asked: list[tuple[str, Sequence[str] | None, int | None]] = []

    def on_clarification(question: str, options: Sequence[str] | None, timeout: int | None) -> str:
        asked.append((question, options, timeout))
        return "To find a meeting time."

    agent = make_agent(world.auth(on_clarification=on_clarification), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert asked == [("Why do you need this?", ("yes", "no"), 120)]
    assert world.ps.bodies["pending-POST"] == [
        {"action": "clarification_response", "clarification_response": "To find a meeting time."}
    ]
    assert {"content-type", "content-digest"} <= set(world.ps.covered[-2])


async def test_clarification_answered_asynchronously(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "clarification"

    async def on_clarification(question: str, options: Any, timeout: Any) -> str:
        return "async answer"

    agent = make_agent(world.auth(on_clarification=on_clarification), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.bodies["pending-POST"][0]["clarification_response"] == "async answer"


async def test_clarification_with_an_updated_request(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "clarification"
    agent = make_agent(
        world.auth(
            on_clarification=lambda q, o, t: UpdatedRequest("eyJ.updated.rt", "read-only now")
        ),
        world.mapping,
    )
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.bodies["pending-POST"] == [
        {
            "action": "updated_request",
            "resource_token": "eyJ.updated.rt",
            "justification": "read-only now",
        }
    ]


@pytest.mark.parametrize("callback", [lambda q, o, t: CANCEL, None])
async def test_clarification_cancelled(
    world: World, make_agent: Callable[..., Agent], callback: Any
) -> None:
    world.ps.token_requirement = "clarification"
    agent = make_agent(world.auth(on_clarification=callback), world.mapping)
    with pytest.raises(RequestCancelledError):
        await agent.get(f"{RESOURCE}/data")
    assert world.ps.hits["pending-DELETE"] == 1
    assert all(entry.cancelled for entry in world.ps.pending.values())


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "denied", DeniedError),
        (403, "abandoned", AbandonedError),
        (408, "expired", ExpiredError),
        (410, "invalid_code", InvalidCodeError),
        (500, "server_error", ServerError),
    ],
)
async def test_terminal_poll_responses(
    world: World, make_agent: Callable[..., Agent], status: int, code: str, error: type[Exception]
) -> None:
    world.ps.token_requirement = "approval"
    world.ps.poll_outcome = (status, code)
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(error) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert isinstance(caught.value, AgentProtocolError)
    assert caught.value.code == code and caught.value.status == status


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "denied", DeniedError),
        (403, "user_unreachable", UserUnreachableError),
        (500, "server_error", ServerError),
        (400, "invalid_request", InvalidRequestError),
        (400, "unknown_person_token", UnknownPersonTokenError),
    ],
)
async def test_token_endpoint_errors(
    world: World, make_agent: Callable[..., Agent], status: int, code: str, error: type[Exception]
) -> None:
    world.ps.token_error = (status, code)
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(error) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.code == code  # type: ignore[attr-defined]


async def test_unknown_error_code_keeps_its_code(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_error = (400, "brand_new_error")
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(ProtocolError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.code == "brand_new_error"


async def test_poll_timeout(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 10**6
    world.ps.retry_after = "5"
    agent = make_agent(world.auth(max_poll_seconds=12), world.mapping)
    with pytest.raises(PollTimeoutError) as caught:
        await agent.get(f"{RESOURCE}/profile")
    assert caught.value.code == "expired"
    assert world.sleeps == [5, 5]


async def test_retry_after_defaults_to_five_seconds(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 2
    world.ps.retry_after = None
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    assert world.sleeps == [5, 5]


async def test_slow_down_adds_five_seconds(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 3  # the 429 counts as one of the polls
    world.ps.slow_downs = 1
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    # 202 (Retry-After 0), 429 (no Retry-After: 5 + 5), 202 (0 + 5), 200
    assert world.sleeps == [0, 10, 5]


async def test_prefer_wait_can_be_turned_off(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    agent = make_agent(world.auth(prefer_wait=None), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    assert world.ps.prefer == [None, None]


async def test_cross_origin_location_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    world.ps.pending_location = lambda pending_id: f"https://evil.example/pending/{pending_id}"
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(DeferredResponseError):
        await agent.get(f"{RESOURCE}/profile")
    assert world.ps.hits["pending-GET"] == 0


async def test_absolute_same_origin_location(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    world.ps.pending_location = lambda pending_id: f"{PS}/pending/{pending_id}"
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200


@pytest.mark.parametrize("requirement", ["claims", "dance"])
async def test_unknown_or_misplaced_requirement(
    world: World, make_agent: Callable[..., Agent], requirement: str
) -> None:
    world.ps.person_requirement = requirement
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(UnsupportedRequirementError) as caught:
        await agent.get(f"{RESOURCE}/profile")
    assert caught.value.requirement.value == requirement


async def test_events_describe_every_step_without_tokens(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "approval"
    events: list[FlowEvent] = []
    agent = make_agent(world.auth(on_event=events.append), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    kinds = [event.kind for event in events]
    for kind in ("metadata", "request", "response", "challenge", "token", "approval", "polling"):
        assert kind in kinds
    tokens = [e for e in events if e.kind == "token"]
    assert [e.token_type for e in tokens] == ["person", "auth"]  # type: ignore[attr-defined]
    assert tokens[1].claims["scope"] == "data.read"  # type: ignore[attr-defined]
    text = " ".join(f"{e!r} {e}" for e in events)
    assert "eyJ" not in text  # no JWT, in repr or in description


async def test_errors_are_reported_as_events(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_error = (403, "denied")
    events: list[FlowEvent] = []
    agent = make_agent(world.auth(on_event=events.append), world.mapping)
    with pytest.raises(DeniedError):
        await agent.get(f"{RESOURCE}/data")
    assert events[-1].kind == "error" and "denied" in str(events[-1])


async def test_a_failing_event_hook_does_not_break_the_flow(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    def hook(event: FlowEvent) -> None:
        raise RuntimeError("observer bug")

    agent = make_agent(world.auth(on_event=hook), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200


async def test_no_capabilities_header_at_the_person_server(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.capability_headers == [None, None]


async def test_a_bare_202_is_the_resources_own_answer(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    """§Deferred Responses: every AAuth 202 carries Location. A 202 with neither Location nor
    AAuth-Requirement (MCP acknowledging a notification) goes back to the caller untouched."""
    seen: list[str] = []

    async def accepted(request: Request) -> Response:
        seen.append(request.headers.get("signature-key", ""))
        return Response(status_code=202)

    app = Starlette(routes=[Route("/notify", accepted, methods=["POST"])])
    agent = make_agent(world.auth(), {**world.mapping, RESOURCE: app})
    response = await agent.request("POST", f"{RESOURCE}/notify", json={"method": "ping"})
    assert response.status_code == 202
    assert len(seen) == 1 and seen[0].startswith("sig=jwt")
    assert world.sleeps == []  # nothing polled
