"""ChatPrompts and the prompt objects, driven by a real agent flow: the agent talks to the
test PS and resource of ``tests/agent`` (real Starlette apps verifying every signature), and a
"chat app" iterates the prompts in its own event loop and answers from there.

Each scenario runs with httpx.Client (the agent in a worker thread, the answer handed back
across threads) and httpx.AsyncClient (agent and chat in one loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from support.agent import PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    ClarificationRequest,
    InteractionRequest,
    PendingEnded,
    Polling,
    RequestCancelledError,
)
from aauth_agents.prompts import (
    ChatPrompts,
    ClarificationPrompt,
    InteractionPrompt,
    Prompt,
)
from aauth_agents.protocol.errors import ConfigurationError


async def first(prompts: ChatPrompts, timeout: float = 10) -> Prompt:
    async def take() -> Prompt:
        async for prompt in prompts:
            return prompt
        raise AssertionError("the iteration ended")

    return await asyncio.wait_for(take(), timeout)


async def test_the_chat_app_relays_an_interaction_and_sees_it_approved(
    make_agent: Callable[..., Agent], pause: Any
) -> None:
    world = World()
    world.ps.token_requirement = "interaction"
    world.ps.retry_after = "0"
    prompts = ChatPrompts()
    agent = make_agent(
        world.auth(prompts=prompts, sleep=pause, justification="Sum it up"), world.mapping
    )
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    prompt = await first(prompts)
    assert isinstance(prompt, InteractionPrompt) and prompt.kind == "interaction"
    assert prompt.link == f"{PS}/consent?code={prompt.code}" and prompt.resource == RESOURCE
    assert prompt.link in prompt.markdown and f"**{prompt.code}**" in prompt.markdown
    assert "Sum it up" in prompt.markdown and prompt in prompts.open
    statuses: list[str] = []
    prompt.subscribe(lambda p: statuses.append(p.status))
    assert world.ps.consent(prompt.code)  # the person approves in their browser
    assert (await asyncio.wait_for(request, 10)).status_code == 200
    assert statuses[0] == "waiting" and statuses[-1] == "approved"
    assert prompt.finished and "_Approved._" in prompt.markdown and prompts.open == []


async def test_the_chat_app_answers_a_clarification_from_its_loop(
    make_agent: Callable[..., Agent],
) -> None:
    world = World()
    world.ps.token_requirement = "clarification"
    prompts = ChatPrompts()
    agent = make_agent(world.auth(prompts=prompts), world.mapping)
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    prompt = await first(prompts)
    assert isinstance(prompt, ClarificationPrompt)
    assert prompt.question == "Why do you need this?" and prompt.options == ("yes", "no")
    assert "Why do you need this?" in prompt.markdown and "`yes`" in prompt.markdown
    with pytest.raises(ConfigurationError):
        prompt.answer("   ")  # nothing to send: refused, the prompt stays open
    assert not prompt.finished
    prompt.answer("To plan the week.")
    assert (await asyncio.wait_for(request, 10)).status_code == 200
    assert prompt.status == "answered"
    assert world.ps.bodies["pending-POST"] == [
        {"action": "clarification_response", "clarification_response": "To plan the week."}
    ]


async def test_cancel_from_the_chat_withdraws_the_request(
    make_agent: Callable[..., Agent], pause: Any
) -> None:
    world = World()
    world.ps.token_requirement = "interaction"
    world.ps.retry_after = "0"
    prompts = ChatPrompts()
    agent = make_agent(world.auth(prompts=prompts, sleep=pause), world.mapping)
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    prompt = await first(prompts)
    prompt.cancel()
    with pytest.raises(RequestCancelledError):
        await asyncio.wait_for(request, 10)
    assert world.ps.hits["pending-DELETE"] == 1 and prompt.status == "cancelled"


async def test_several_chat_iterations_each_see_every_prompt() -> None:
    prompts = ChatPrompts()
    seen: list[list[str]] = [[], []]

    async def listen(index: int) -> None:
        async for prompt in prompts:
            seen[index].append(prompt.pending_url)
            if len(seen[index]) == 2:
                return

    listeners = [asyncio.create_task(listen(i)) for i in range(2)]
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    for n in range(2):  # shown from another thread, as a sync agent would
        request = InteractionRequest(f"{PS}/i", "ABCD-EFGH", f"{PS}/pending/{n}")
        await loop.run_in_executor(None, prompts.interaction, request)
    await asyncio.wait_for(asyncio.gather(*listeners), 5)
    assert seen == [[f"{PS}/pending/0", f"{PS}/pending/1"]] * 2


async def test_events_move_the_status_and_end_the_prompt() -> None:
    prompts = ChatPrompts()
    prompt = prompts.interaction(
        InteractionRequest(f"{PS}/i", "ABCD-EFGH", f"{PS}/pending/1", expires_in=120)
    )
    prompts.event(Polling(f"{PS}/pending/1", 1, 1.0, "interacting"))
    assert prompt.status == "interacting" and "2:00 left" in prompt.markdown
    prompts.event(PendingEnded(f"{PS}/pending/1", "denied", 403))
    assert prompt.status == "denied" and prompt.finished and prompts.open == []
    prompts.event(Polling(f"{PS}/pending/1", 2, 1.0, "pending"))  # too late: stays final
    assert prompt.status == "denied"


async def test_an_unanswered_clarification_is_withdrawn_at_its_timeout() -> None:
    prompts = ChatPrompts()
    reply = prompts.clarification(
        ClarificationRequest("Why?", f"{PS}/pending/1", None, timeout=0)  # already due
    )
    answer = await asyncio.wait_for(reply, 5)
    assert type(answer).__name__ == "Cancel"
    [prompt] = [p for p in [*prompts.open]] or [None]
    assert prompt is None  # it ended: expired


async def test_the_callback_forms_serve_the_same_prompts(
    make_agent: Callable[..., Agent],
) -> None:
    world = World()
    world.ps.token_requirement = "clarification"
    prompts = ChatPrompts()
    auth = world.auth(
        on_interaction=prompts.on_interaction, on_clarification=prompts.on_clarification
    )
    agent = make_agent(auth, world.mapping)
    request = asyncio.create_task(agent.get(f"{RESOURCE}/data"))
    prompt = await first(prompts)
    assert isinstance(prompt, ClarificationPrompt) and prompt.options == ("yes", "no")
    prompt.answer("yes")
    assert (await asyncio.wait_for(request, 10)).status_code == 200
