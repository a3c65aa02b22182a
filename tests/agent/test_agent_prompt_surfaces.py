"""Prompt surfaces, per-call views and pending requests that outlive a call.

* a surface (``AAuth(prompts=...)``) gets the interaction and the clarification with their
  context, sees every event, and can cancel a request it shows (``PendingControl``);
* ``AAuth.derive`` gives one call its own handlers, events and ``PendingRequests`` while
  sharing the caches;
* a call that stopped while its request was pending resumes it (polls the same URL: no
  second request at the PS), or withdraws it (``DELETE``, §Cancel Request);
* the agent withdraws a request it gives up on (``max_poll_seconds``).

Each test runs with httpx.Client and httpx.AsyncClient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.agent import PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    CANCEL,
    AAuth,
    Answer,
    ClarificationRequest,
    FlowEvent,
    FutureAnswer,
    InteractionRequest,
    PendingEnded,
    PendingRequests,
    PollTimeoutError,
    RequestCancelledError,
)
from aauth_agents.protocol.errors import ConfigurationError


class Surface:
    """A prompt surface that records what it is shown and answers as told."""

    def __init__(self, world: World, *, approve: bool = True, answer: Any = "Because.") -> None:
        self.world, self.approve, self.answer = world, approve, answer
        self.interactions: list[InteractionRequest] = []
        self.clarifications: list[ClarificationRequest] = []
        self.events: list[FlowEvent] = []
        self.result: Any = None

    def interaction(self, request: InteractionRequest) -> Any:
        self.interactions.append(request)
        if self.approve:
            assert self.world.ps.consent(request.code)
        return self.result

    def clarification(self, request: ClarificationRequest) -> Any:
        self.clarifications.append(request)
        return self.answer

    def event(self, event: FlowEvent) -> None:
        self.events.append(event)

    def ended(self) -> list[PendingEnded]:
        return [e for e in self.events if isinstance(e, PendingEnded)]


class Control:
    """A ``PendingControl``: cancels once ``polls`` polls were scheduled."""

    def __init__(self, world: World, polls: int) -> None:
        self.world, self.polls = world, polls
        self.finished: list[str] = []

    @property
    def cancel_requested(self) -> bool:
        return self.world.ps.hits["pending-GET"] >= self.polls

    def finish(self, outcome: str) -> None:
        self.finished.append(outcome)


async def test_a_surface_sees_the_interaction_with_its_context(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    surface = Surface(world)
    auth = world.auth(prompts=surface, justification="Read your data", max_poll_seconds=90)
    agent = make_agent(auth, world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    [shown] = surface.interactions
    assert shown.url == f"{PS}/consent" and shown.link == f"{PS}/consent?code={shown.code}"
    assert shown.resource == RESOURCE and shown.justification == "Read your data"
    assert shown.pending_url.startswith(f"{PS}/pending/")
    assert shown.expires_in == 90  # the frozen clock has not moved: all of max_poll_seconds
    [ended] = surface.ended()
    assert (ended.url, ended.outcome, ended.status) == (shown.pending_url, "approved", 200)
    kinds = [event.kind for event in surface.events]
    last_token = len(kinds) - 1 - kinds[::-1].index("token")  # the auth token
    assert kinds.index("interaction") < kinds.index("pending_end") < last_token


async def test_a_surface_answers_a_clarification(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "clarification"
    surface = Surface(world, answer=Answer("To find a meeting time."))
    agent = make_agent(world.auth(prompts=surface), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    [asked] = surface.clarifications
    assert (asked.question, asked.options, asked.timeout) == (
        "Why do you need this?",
        ("yes", "no"),
        120,
    )
    assert asked.resource == RESOURCE and asked.pending_url.startswith(f"{PS}/pending/")
    assert world.ps.bodies["pending-POST"] == [
        {"action": "clarification_response", "clarification_response": "To find a meeting time."}
    ]


async def test_prompts_and_callbacks_are_exclusive(world: World) -> None:
    with pytest.raises(ConfigurationError):
        world.auth(prompts=Surface(world), on_interaction=lambda url, code: None)
    with pytest.raises(ConfigurationError):
        world.auth().derive(prompts=Surface(world), on_clarification=lambda q, o, t: "x")


async def test_an_interaction_handler_returning_cancel_withdraws(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    surface = Surface(world, approve=False)
    surface.result = CANCEL
    agent = make_agent(world.auth(prompts=surface), world.mapping)
    with pytest.raises(RequestCancelledError):
        await agent.get(f"{RESOURCE}/data")
    assert world.ps.hits["pending-DELETE"] == 1
    assert all(entry.cancelled for entry in world.ps.pending.values())
    assert [e.outcome for e in surface.ended()] == ["cancelled"]


async def test_a_pending_control_cancels_between_polls_with_short_long_polls(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    world.ps.retry_after = "1"
    surface = Surface(world, approve=False)
    surface.result = control = Control(world, polls=3)
    agent = make_agent(world.auth(prompts=surface), world.mapping)
    with pytest.raises(RequestCancelledError):
        await agent.get(f"{RESOURCE}/data")
    assert world.ps.hits["pending-GET"] == 3 and world.ps.hits["pending-DELETE"] == 1
    # The token requests asked for 30 s; the polls, while a prompt could cancel, for 5 s.
    assert world.ps.prefer == [30, 30, 5, 5, 5, None]  # (the DELETE asks for no wait)
    assert control.finished == ["cancelled"]


async def test_only_the_first_polls_are_kept_short_for_a_control(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    """After ``CONTROLLED_POLLS`` short polls the agent long-polls again: httpx counts
    every poll against ``max_redirects`` (20), so a person taking minutes must not use them
    up five seconds at a time; a cancel then takes effect at the next poll."""
    from aauth_agents.agent.flow import CONTROLLED_POLLS, CONTROLLED_WAIT

    world.ps.token_requirement = "interaction"
    world.ps.retry_after = "1"
    surface = Surface(world, approve=False)
    surface.result = Control(world, polls=CONTROLLED_POLLS + 2)
    agent = make_agent(world.auth(prompts=surface), world.mapping)
    with pytest.raises(RequestCancelledError):
        await agent.get(f"{RESOURCE}/data")
    short = [CONTROLLED_WAIT] * CONTROLLED_POLLS
    assert world.ps.prefer == [30, 30, *short, 30, 30, None]


async def test_the_control_is_told_how_the_request_ended(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    surface = Surface(world)
    surface.result = control = Control(world, polls=10**6)
    agent = make_agent(world.auth(prompts=surface), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert control.finished == ["approved"]


async def test_the_agent_withdraws_a_request_it_gives_up_on(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 10**6
    world.ps.retry_after = "5"
    events: list[FlowEvent] = []
    agent = make_agent(world.auth(max_poll_seconds=12, on_event=events.append), world.mapping)
    with pytest.raises(PollTimeoutError):
        await agent.get(f"{RESOURCE}/profile")
    assert world.ps.hits["pending-DELETE"] == 1
    assert [(e.outcome, e.status) for e in events if isinstance(e, PendingEnded)] == [
        ("expired", 204)
    ]


class Interrupted(Exception):
    """What a LangGraph interrupt looks like to the flow: the handler raises."""


async def test_a_call_interrupted_while_pending_resumes_the_same_request(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    base = world.auth()
    pending = PendingRequests()
    shown: list[str] = []

    def interrupt(url: str, code: str) -> None:
        shown.append(code)
        raise Interrupted

    agent = make_agent(base, world.mapping)
    with pytest.raises(Interrupted):
        await agent.get(
            f"{RESOURCE}/data", auth=base.derive(on_interaction=interrupt, pending=pending)
        )
    [location] = pending.locations
    assert location.startswith(f"{PS}/pending/") and world.ps.hits["token"] == 1
    assert world.ps.consent(shown[0])  # the person approves while the call is suspended
    resumed = base.derive(on_interaction=interrupt, pending=pending)
    assert (await agent.get(f"{RESOURCE}/data", auth=resumed)).status_code == 200
    assert world.ps.hits["token"] == 1  # no second request: the same one was polled
    assert len(pending) == 0
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200  # the base has the token
    assert world.ps.hits["token"] == 1


async def test_a_resumed_request_unknown_to_the_server_is_made_again(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    base = world.auth()
    pending = PendingRequests()

    def interrupt(url: str, code: str) -> None:
        raise Interrupted

    agent = make_agent(base, world.mapping)
    with pytest.raises(Interrupted):
        await agent.get(
            f"{RESOURCE}/data", auth=base.derive(on_interaction=interrupt, pending=pending)
        )
    world.ps.pending.clear()  # the PS forgot it (say, a restart without persistence)
    surface = Surface(world)
    resumed = base.derive(prompts=surface, pending=pending)
    assert (await agent.get(f"{RESOURCE}/data", auth=resumed)).status_code == 200
    assert world.ps.hits["token"] == 2 and len(surface.interactions) == 1


async def test_withdraw_deletes_what_a_call_left_pending(
    world: World, make_agent: Callable[..., Agent], mode: str
) -> None:
    world.ps.token_requirement = "interaction"
    base = world.auth()
    pending = PendingRequests()

    def interrupt(url: str, code: str) -> None:
        raise Interrupted

    agent = make_agent(base, world.mapping)
    with pytest.raises(Interrupted):
        await agent.get(
            f"{RESOURCE}/data", auth=base.derive(on_interaction=interrupt, pending=pending)
        )
    assert len(pending) == 1
    if mode == "sync":
        assert agent.sync_client is not None
        withdrawn = base.withdraw(pending, agent.sync_client)
    else:
        assert agent.async_client is not None
        withdrawn = await base.awithdraw(pending, agent.async_client)
    assert withdrawn == 1 and len(pending) == 0
    assert world.ps.hits["pending-DELETE"] == 1
    assert all(entry.cancelled for entry in world.ps.pending.values())


async def test_a_derived_view_reports_to_both_hooks_and_shares_the_caches(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    base_events: list[FlowEvent] = []
    view_events: list[FlowEvent] = []
    base = world.auth(on_event=base_events.append)
    view = base.derive(on_event=view_events.append)
    agent = make_agent(base, world.mapping)
    assert (await agent.get(f"{RESOURCE}/data", auth=view)).status_code == 200
    assert [e.kind for e in view_events] == [e.kind for e in base_events]
    assert any(e.kind == "token" for e in view_events)
    exchanges = world.ps.hits["token"]
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == exchanges  # the base uses what the view obtained


async def test_a_mission_adopted_by_a_view_is_the_agents(world: World) -> None:
    base = world.auth()
    view = base.derive()
    view.mission_s256 = "A" * 43
    assert base.mission_s256 == "A" * 43
    assert isinstance(view, AAuth) and view.state is base.state


async def test_a_resources_own_pending_request_is_resumed(
    make_agent: Callable[..., Agent],
) -> None:
    """The resource's own interaction (two-party, no PS): the re-run polls its pending URL
    instead of sending the request again."""
    world = World(ps_claim=False)
    base = world.auth()
    pending = PendingRequests()
    shown: list[str] = []

    def interrupt(url: str, code: str) -> None:
        shown.append(code)
        raise Interrupted

    agent = make_agent(base, world.mapping)
    with pytest.raises(Interrupted):
        await agent.get(
            f"{RESOURCE}/session", auth=base.derive(on_interaction=interrupt, pending=pending)
        )
    [location] = pending.locations
    assert location.startswith(f"{RESOURCE}/pending/") and world.resource.hits["session"] == 1
    world.resource.approve(shown[0])
    resumed = base.derive(on_interaction=interrupt, pending=pending)
    assert (await agent.get(f"{RESOURCE}/session", auth=resumed)).status_code == 200
    assert world.resource.hits["session"] == 1 and len(pending) == 0
    assert base.session_token(RESOURCE) == world.resource.issued_sessions[0]


async def test_a_reply_answered_from_another_thread(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    """A surface returns a ``FutureAnswer`` and the person answers later, from another thread (a
    widget's comm thread, a chat handler): the sync driver waits in its thread, the async
    driver awaits without blocking the loop."""
    import asyncio
    import threading

    world.ps.token_requirement = "clarification"
    surface = Surface(world)
    replies: list[FutureAnswer] = []

    def clarification(request: ClarificationRequest) -> FutureAnswer:
        reply = FutureAnswer()
        replies.append(reply)
        threading.Timer(0.05, reply.set, args=("Answered later.",)).start()
        return reply

    surface.clarification = clarification  # type: ignore[method-assign]
    agent = make_agent(world.auth(prompts=surface), world.mapping)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    finally:
        ticker.cancel()
    assert ticks > 3  # the loop kept running while the agent waited
    assert world.ps.bodies["pending-POST"] == [
        {"action": "clarification_response", "clarification_response": "Answered later."}
    ]
    assert replies[0].done and not replies[0].set("twice")


async def test_a_long_wait_needs_the_clients_max_redirects_raised(world: World, mode: str) -> None:
    """httpx counts every round trip of an auth flow against ``max_redirects`` (20): a wait
    of 30 polls fails on a default client, and completes on one made with
    ``client_options`` (what ``AAuth.client()`` uses)."""
    import httpx
    import httpx2

    from aauth_agents.agent import client_options

    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 30
    plain = Agent(mode, world.auth(), world.mapping)
    try:
        with pytest.raises((httpx2 if mode == "httpx2" else httpx).TooManyRedirects):
            await plain.get(f"{RESOURCE}/profile")
    finally:
        await plain.aclose()
    world.ps.approval_rounds = 30
    options = client_options()
    assert options["max_redirects"] >= 1000
    agent = Agent(mode, world.auth(), world.mapping, max_redirects=options["max_redirects"])
    try:
        assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    finally:
        await agent.aclose()
    assert world.ps.hits["pending-GET"] >= 30


async def test_the_agents_own_clients_sign_and_allow_long_waits(world: World) -> None:
    from aauth_agents.transport import AsyncMappedTransport, MappedTransport

    auth = world.auth()
    with auth.client(transport=MappedTransport(world.mapping, strict=True)) as client:
        assert client.max_redirects >= 1000 and client.timeout.read == 30
        assert client.get(f"{RESOURCE}/data").status_code == 200
    transport = AsyncMappedTransport(world.mapping, strict=True)
    async with auth.async_client(transport=transport, timeout=7) as aclient:
        assert aclient.max_redirects >= 1000 and aclient.timeout.read == 7
        assert (await aclient.get(f"{RESOURCE}/data")).status_code == 200
