"""§Deferred Responses at the PS over real HTTP: pending URLs, ``Prefer: wait``, status
``interacting``, every polling error, clarification chat, updated requests, withdrawal,
interaction codes, and approval without a browser."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from support.ps import PASSWORD, RES, Agent, World, problem

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import (
    ApprovalPolicy,
    ConsentRequest,
    Decision,
    InteractionError,
)
from aauth_agents.tokens import peek


async def ask_person_token(world: World, agent: Agent, **body: Any) -> httpx.Response:
    response = await agent.post("/person", {"resource": RES, **body})
    assert response.status_code == 202, response.text
    return response


def link(response: httpx.Response) -> tuple[str, str]:
    requirement = parse_requirement(response.headers["aauth-requirement"])
    assert requirement.url is not None and requirement.code is not None
    return requirement.url.rsplit("/", 1)[1], requirement.code


async def open_page(world: World, response: httpx.Response):  # type: ignore[no-untyped-def]
    """The person opens the link (the code finds the request) and, signed in, looks at it
    (the agent sees ``interacting``)."""
    assert world.ps is not None
    view = await world.ps.interactions.lookup(*link(response))
    return await world.ps.interactions.mark_interacting(view.id)


async def test_prefer_wait_returns_as_soon_as_the_person_decides(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)

    async def person() -> None:
        await asyncio.sleep(0.05)
        assert world.ps is not None
        await world.ps.interactions.approve(view.id, "alice")

    polled, _ = await asyncio.gather(
        agent.get(pending.headers["location"], headers={"Prefer": "wait=20"}), person()
    )
    assert polled.status_code == 200, polled.text
    await world.check_person_token(polled.json()["person_token"], agent.public, not_after=agent.exp)


async def test_prefer_wait_returns_when_the_person_asks_a_question(world: World) -> None:
    """A long poll ends with requirement=clarification as soon as the person asks (and a
    poll arriving while a question is open does not wait at all)."""
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent, capabilities=["interaction", "clarification"])
    view = await open_page(world, pending)

    async def person() -> None:
        await asyncio.sleep(0.05)
        assert world.ps is not None
        await world.ps.interactions.ask(view.id, "Which folder?")

    polled, _ = await asyncio.wait_for(
        asyncio.gather(
            agent.get(pending.headers["location"], headers={"Prefer": "wait=30"}), person()
        ),
        20,
    )
    assert polled.status_code == 202
    assert parse_requirement(polled.headers["aauth-requirement"]).value == "clarification"
    assert polled.json()["clarification"] == "Which folder?"
    again = await asyncio.wait_for(
        agent.get(pending.headers["location"], headers={"Prefer": "wait=30"}), 20
    )
    assert parse_requirement(again.headers["aauth-requirement"]).value == "clarification"


async def test_prefer_wait_times_out_with_202(bare: World) -> None:
    bare.start(max_wait=1)
    agent = bare.agent()
    pending = await ask_person_token(bare, agent)
    polled = await agent.get(pending.headers["location"], headers={"Prefer": "wait=60"})
    assert polled.status_code == 202 and polled.json() == {"status": "pending"}
    assert polled.headers["retry-after"] == "1"


async def test_status_interacting_once_the_person_arrived(world: World) -> None:
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    assert (await agent.poll(pending)).json() == {"status": "pending"}
    await open_page(world, pending)
    interacting = await agent.poll(pending)
    assert interacting.json() == {"status": "interacting"}
    assert parse_requirement(interacting.headers["aauth-requirement"]).value == "interaction"


async def test_abandoned(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    await world.ps.interactions.abandon(view.id)
    polled = await agent.poll(pending)
    assert polled.status_code == 403 and problem(polled) == "abandoned"
    assert (await agent.poll(pending)).status_code == 410


async def test_expired(world: World) -> None:
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    world.clock.advance(601)
    agent.refresh()
    polled = await agent.get(pending.headers["location"])
    assert polled.status_code == 408 and problem(polled) == "expired"
    assert (await agent.get(pending.headers["location"])).status_code == 410
    assert world.ps is not None
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.lookup(*link(pending))
    assert raised.value.code in ("expired", "invalid_code")


async def test_code_expires_with_its_pending_request(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    world.clock.advance(601)
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.lookup(*link(pending))
    assert raised.value.code == "expired" and raised.value.status == 408


async def test_slow_down(world: World) -> None:
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    statuses = [(await agent.get(pending.headers["location"])).status_code for _ in range(6)]
    assert statuses == [202] * 5 + [429]
    slowed = await agent.get(pending.headers["location"])
    assert problem(slowed) == "slow_down"
    world.clock.advance(1)
    assert (await agent.get(pending.headers["location"])).status_code == 202


async def test_server_error(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    await world.ps.interactions.approve(view.id, "alice")
    world.ps.db.execute("DELETE FROM ps_accounts WHERE username = 'alice'")  # internal failure
    polled = await agent.poll(pending)
    assert polled.status_code == 500 and problem(polled) == "server_error"


@pytest.mark.parametrize("decision", ["approve", "deny", "abandon"])
async def test_the_decision_spends_the_code(world: World, decision: str) -> None:
    """§Interaction Code Format: the code correlates the link with the request -- opening
    it again (another browser, a preview) finds the same request and spends nothing --
    until the person decides; every later presentation is ``invalid_code``."""
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    again = await world.ps.interactions.lookup(*link(pending))
    assert again.id == view.id and again.state == "interacting"
    if decision == "approve":
        await world.ps.interactions.approve(view.id, "alice")
    else:
        await getattr(world.ps.interactions, decision)(view.id)
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.lookup(*link(pending))
    assert raised.value.code == "invalid_code" and raised.value.status == 410
    record = await world.ps.pending.aget(view.id)
    assert record is not None and record.code is None
    assert (await world.ps.interactions.get(view.id)) is not None


async def test_code_is_case_hyphen_and_alias_insensitive(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    interaction_id, _ = link(pending)
    record = await world.ps.pending.aget_by_interaction(interaction_id)
    assert record is not None
    # Give the request a code with the ambiguous symbols 0 and 1 in it.
    stored = await world.ps.pending.areplace(record.evolve(code="A0B1C2D1"))
    assert stored is not None
    view = await world.ps.interactions.lookup(interaction_id, " a-o-b-i-c2-dl ")
    assert view.id == record.id and view.state == "pending"  # found; nothing spent


async def test_too_many_wrong_codes_fail_the_interaction(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    interaction_id, code = link(pending)
    wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    for _ in range(4):
        with pytest.raises(InteractionError):
            await world.ps.interactions.lookup(interaction_id, wrong)
    with pytest.raises(InteractionError):
        await world.ps.interactions.lookup(interaction_id, "not base32 !")
    with pytest.raises(InteractionError) as raised:  # now even the right code fails
        await world.ps.interactions.lookup(interaction_id, code)
    assert raised.value.code == "invalid_code"
    polled = await agent.poll(pending)
    assert polled.status_code == 410 and problem(polled) == "invalid_code"


async def test_unknown_interaction(world: World) -> None:
    assert world.ps is not None
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.lookup("no-such-interaction", "ABCD-EFGH")
    assert raised.value.code == "invalid_code"


async def test_withdrawn_by_the_agent(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    deleted = await agent.delete(pending.headers["location"])
    assert deleted.status_code == 204
    assert (await agent.get(pending.headers["location"])).status_code == 410
    assert (await agent.delete(pending.headers["location"])).status_code == 410
    withdrawn = await world.ps.interactions.get(view.id)
    assert withdrawn is not None and withdrawn.withdrawn and withdrawn.state == "completed"
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.approve(view.id, "alice")
    assert raised.value.status == 410


async def test_another_agent_cannot_poll(world: World) -> None:
    agent, other = world.agent("one"), world.agent("two")
    pending = await ask_person_token(world, agent)
    polled = await other.get(pending.headers["location"])
    assert polled.status_code == 404
    assert (await other.delete(pending.headers["location"])).status_code == 404
    assert (await agent.get(pending.headers["location"])).status_code == 202


async def test_unknown_pending_url(world: World) -> None:
    polled = await world.agent().get("/pending/nothing-here")
    assert polled.status_code == 404


async def test_unsigned_poll_is_refused(world: World) -> None:
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    response = await world.client.get(pending.headers["location"])
    assert response.status_code == 401 and "signature-error" in response.headers


async def test_binding_conflict_at_approval(world: World) -> None:
    assert world.ps is not None
    world.ps.accounts.create_account("bob", PASSWORD)
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    with pytest.raises(InteractionError) as raised:
        await world.ps.interactions.approve(view.id, "bob")
    assert raised.value.status == 403
    assert (await agent.poll(pending)).json() == {"status": "interacting"}


async def test_first_approval_binds_the_agent(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    assert view.new_agent
    await world.ps.interactions.approve(view.id, "alice")
    binding = world.ps.state.binding("https://agents.example", agent.agent_id)
    assert binding is not None and binding.account == "alice" and binding.how == "interaction"
    assert any(e.name == "bound" and e.agent == agent.agent_id for e in world.events)


# -- clarification chat --------------------------------------------------------------------


async def test_clarification_round_trip(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(
        world, agent, capabilities=["interaction", "clarification"], justification="I need it"
    )
    view = await open_page(world, pending)
    assert view.can_clarify and view.rounds_left == 5
    await world.ps.interactions.ask(view.id, "Why *this* resource?")
    asked = await agent.poll(pending)
    assert asked.status_code == 202
    assert parse_requirement(asked.headers["aauth-requirement"]).value == "clarification"
    body = asked.json()
    assert body["status"] == "interacting" and body["clarification"] == "Why *this* resource?"
    assert 0 < body["timeout"] <= 600
    answered = await agent.post(
        pending.headers["location"],
        {"action": "clarification_response", "clarification_response": "It has your files."},
    )
    assert answered.status_code == 202
    assert parse_requirement(answered.headers["aauth-requirement"]).value == "interaction"
    view = await world.ps.interactions.get(view.id)
    assert view is not None
    assert [(c.question, c.answer) for c in view.clarifications] == [
        ("Why *this* resource?", "It has your files.")
    ]
    assert view.rounds_left == 4 and not view.question_open
    await world.ps.interactions.approve(view.id, "alice")
    assert (await agent.poll(answered)).status_code == 200


async def test_at_most_five_clarification_rounds(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent, capabilities=["interaction", "clarification"])
    view = await open_page(world, pending)
    for n in range(5):
        await world.ps.interactions.ask(view.id, f"question {n}")
        response = await agent.post(
            pending.headers["location"],
            {"action": "clarification_response", "clarification_response": f"answer {n}"},
        )
        assert response.status_code == 202
    with pytest.raises(InteractionError):
        await world.ps.interactions.ask(view.id, "one more")


async def test_one_open_question_at_a_time(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent, capabilities=["interaction", "clarification"])
    view = await open_page(world, pending)
    await world.ps.interactions.ask(view.id, "first?")
    with pytest.raises(InteractionError):
        await world.ps.interactions.ask(view.id, "second?")


async def test_no_clarification_without_the_capability(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    pending = await ask_person_token(world, agent)
    view = await open_page(world, pending)
    assert not view.can_clarify
    with pytest.raises(InteractionError):
        await world.ps.interactions.ask(view.id, "why?")


@pytest.mark.parametrize(
    "body",
    [
        {"clarification_response": "no action"},
        {"action": "guess", "clarification_response": "x"},
        {"action": "clarification_response"},
        {"action": "clarification_response", "clarification_response": "nobody asked"},
    ],
)
async def test_bad_posts_to_the_pending_url(world: World, body: dict) -> None:
    agent = world.agent()
    pending = await ask_person_token(world, agent, capabilities=["interaction", "clarification"])
    response = await agent.post(pending.headers["location"], body)
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_updated_request_replaces_the_scope(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    await world.ps.db.run(
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
    person = await agent.person_token()
    rt = await world.resource.resource_token(person, agent.public, "data.read data.write")
    pending = await agent.post(
        "/token", {"resource_token": rt, "capabilities": ["interaction", "clarification"]}
    )
    view = await open_page(world, pending)
    await world.ps.interactions.ask(view.id, "Why write access?")
    smaller = await world.resource.resource_token(person, agent.public, "data.read")
    updated = await agent.post(
        pending.headers["location"],
        {
            "action": "updated_request",
            "resource_token": smaller,
            "justification": "Read-only is enough.",
        },
    )
    assert updated.status_code == 202, updated.text
    view = await world.ps.interactions.get(view.id)
    assert view is not None
    assert [s.scope for s in view.scopes] == ["data.read"]
    assert view.justification == "Read-only is enough."
    assert view.clarifications[0].updated_request
    await world.ps.interactions.approve(view.id, "alice")
    granted = await agent.poll(updated)
    assert granted.status_code == 200
    assert peek(granted.json()["auth_token"])[1]["scope"] == "data.read"


async def test_updated_request_from_another_resource_is_refused(world: World) -> None:
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    for resource in (RES, "https://docs.example"):
        await world.ps.db.run(
            world.ps.state.remember_consent,
            "alice",
            "https://agents.example",
            agent.agent_id,
            resource,
            "person_token",
            None,
            (),
            world.clock(),
        )
    person = await agent.person_token()
    rt = await world.resource.resource_token(person, agent.public, "data.read")
    pending = await agent.post("/token", {"resource_token": rt})
    docs_person = await agent.person_token("https://docs.example")
    other = await world.docs.resource_token(docs_person, agent.public, "docs.read")
    response = await agent.post(
        pending.headers["location"], {"action": "updated_request", "resource_token": other}
    )
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


# -- approval without a browser -------------------------------------------------------------


async def test_approval_policy_decides_without_a_browser(bare: World) -> None:
    seen: list[ConsentRequest] = []

    def decide(request: ConsentRequest) -> Decision:
        seen.append(request)
        return Decision.approve(account="alice")

    bare.start(policy=ApprovalPolicy(decide))
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    response = await agent.post("/person", {"resource": RES})
    assert response.status_code == 202
    assert parse_requirement(response.headers["aauth-requirement"]).value == "approval"
    polled = await agent.get(response.headers["location"], headers={"Prefer": "wait=10"})
    assert polled.status_code == 200, polled.text
    assert seen and seen[0].kind == "person_token" and seen[0].pending_id is not None
    assert seen[0].resource is not None and seen[0].resource.name == "Example Data"


async def test_approval_decided_later_by_an_approver(bare: World) -> None:
    pending_ids: list[str] = []

    async def notify(request: ConsentRequest) -> None:
        assert request.pending_id is not None
        pending_ids.append(request.pending_id)

    bare.start(policy=ApprovalPolicy(notify), default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    response = await agent.post("/person", {"resource": RES})
    assert (await agent.poll(response)).status_code == 202
    await asyncio.sleep(0)
    assert len(pending_ids) == 1
    await bare.ps.interactions.deny(pending_ids[0], "not today")
    denied = await agent.poll(response)
    assert denied.status_code == 403 and problem(denied) == "denied"
    assert denied.json()["detail"] == "not today"


async def test_approval_policy_with_initial_wait(bare: World) -> None:
    bare.start(policy=ApprovalPolicy(lambda request: Decision.approve()), default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    response = await agent.post("/person", {"resource": RES}, headers={"Prefer": "wait=10"})
    assert response.status_code == 200, response.text
