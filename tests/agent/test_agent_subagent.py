"""A sub-agent's AAuth against the in-process resource and person server (§Sub-Agents,
§Parent-Mediated Authorization): the parent asks the PS, signing with its own key and agent
token, the body naming the sub-agent in ``subagent_token``; the sub-agent checks the tokens
against its own key, keeps them in its own caches and signs at the resource itself. Each
test runs with httpx.Client and httpx.AsyncClient."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from support.agent import AGENT_ID, PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    AAuth,
    AgentIdentity,
    AuthTokenVerificationError,
    PersonTokenError,
    RequestSent,
    TokenObtained,
)
from aauth_agents.agent.events import FlowEvent
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import mission_s256
from aauth_agents.protocol.errors import ConfigurationError
from aauth_agents.tokens import mint_agent_token, peek
from aauth_agents.transport import MappedTransport

SUB_ID = "aauth:assistant+worker@agent.example"


def _cnf_thumbprint(token: str) -> str:
    from aauth_agents.keys import PublicKey

    return PublicKey.from_jwk(peek(token)[1]["cnf"]["jwk"]).thumbprint()


def _held(auth: AAuth, world: World, kind: str) -> Any:
    now, margin = world.clock(), auth.config.refresh_margin
    if kind == "person":
        return auth.state.person_token(RESOURCE, auth.mission_s256, now, margin)
    return auth.state.current_auth_token(RESOURCE, now, margin)


async def test_sub_agent_gets_a_person_token_through_its_parent(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    parent = world.auth()
    sub = world.sub_auth(parent)
    agent = make_agent(sub, world.mapping)
    response = await agent.get(f"{RESOURCE}/profile")
    assert response.status_code == 200, response.text

    # The PS heard only from the parent: its agent token in Signature-Key, its signature
    # (the PS verified it against that token's cnf), the body naming the sub-agent.
    assert world.ps.signers == [AGENT_ID]
    (body,) = world.ps.bodies["person"]
    assert body["resource"] == RESOURCE
    assert body["subagent_token"] == sub.identity.agent_token
    assert peek(body["subagent_token"])[1]["parent_agent"] == AGENT_ID
    assert "content-digest" in world.ps.covered[0] and "signature-key" in world.ps.covered[0]

    # The person token is the sub-agent's: bound to its key, in its cache, not the parent's.
    held = _held(sub, world, "person")
    assert held is not None and held.claims["aud"] == RESOURCE
    assert _cnf_thumbprint(held.raw) == sub.identity.key.public_key.thumbprint()
    assert _held(parent, world, "person") is None

    # The resource saw the sub-agent sign: its agent token first, then the person token.
    assert [s.credential for s in world.resource.seen] == ["agent", "person"]
    sub_jkt = sub.identity.key.public_key.thumbprint()
    assert {s.jkt for s in world.resource.seen} == {sub_jkt}


async def test_sub_agent_gets_an_auth_token_through_its_parent(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    parent = world.auth(justification="Plan the trip", capabilities=("interaction",))
    sub = world.sub_auth(parent)
    agent = make_agent(sub, world.mapping)
    response = await agent.get(f"{RESOURCE}/data")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "data.read"

    assert world.ps.signers == [AGENT_ID, AGENT_ID]
    (token_body,) = world.ps.bodies["token"]
    assert token_body["subagent_token"] == sub.identity.agent_token
    # the parent's request: its members (it drives any consent), the sub-agent's resource
    # token, bound to the sub-agent's key
    assert token_body["justification"] == "Plan the trip"
    assert token_body["capabilities"] == ["interaction"]
    rt = peek(token_body["resource_token"])[1]
    sub_jkt = sub.identity.key.public_key.thumbprint()
    assert rt["agent_jkt"] == sub_jkt

    auth = _held(sub, world, "auth")
    assert auth is not None and auth.kind == "auth" and auth.scopes == {"data.read"}
    assert _cnf_thumbprint(auth.raw) == sub_jkt
    assert "parent_agent" not in auth.claims and "parent_agent" not in rt
    assert _held(parent, world, "auth") is None and _held(parent, world, "person") is None

    assert [s.credential for s in world.resource.seen] == ["agent", "person", "auth"]
    assert {s.jkt for s in world.resource.seen} == {sub_jkt}
    assert world.resource.hits["metadata"] == 1  # the sub-agent's own resource cache


async def test_sub_agent_step_up_and_deferred_delivery(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    sub = world.sub_auth(world.auth())
    agent = make_agent(sub, world.mapping)
    # §Deferred Delivery: the auth token arrives while the resource holds the request
    slow = await agent.get(f"{RESOURCE}/slow")
    assert slow.status_code == 200 and slow.json()["result"] == "slow done"
    # step-up: the resource challenges the auth token for another scope
    assert (await agent.post(f"{RESOURCE}/write", content=b"x")).status_code == 200
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200  # the broader token
    assert world.ps.hits["token"] == 2 and world.ps.hits["person"] == 1
    assert all(b["subagent_token"] == sub.identity.agent_token for b in world.ps.bodies["token"])
    assert set(world.ps.signers) == {AGENT_ID}
    sub_jkt = sub.identity.key.public_key.thumbprint()
    assert {s.jkt for s in world.resource.seen} == {sub_jkt}
    polls = [s for s in world.resource.seen if s.path == "pending"]
    assert [s.credential for s in polls] == ["auth"]


async def test_sub_agent_justification_and_mission(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    parent = world.auth(justification="Plan the trip")
    mission = mission_s256(b'{"description":"Plan the trip"}')
    parent.mission_s256 = mission
    sub = world.sub_auth(parent, justification="Search flights")
    assert sub.mission_s256 == mission  # taken from the parent when the sub-agent is made
    agent = make_agent(sub, world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    for body in (world.ps.bodies["person"][0], world.ps.bodies["token"][0]):
        assert body["justification"] == "Search flights"
    assert world.ps.bodies["person"][0]["mission_s256"] == mission
    held = _held(sub, world, "person")
    assert held is not None and held.claims["mission_s256"] == mission


async def test_sub_agent_tokens_are_cached_and_shared(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    # the PS answers only once both requests were challenged, so both are in flight
    world.ps.barrier = lambda: world.resource.challenges["auth-token"] >= 2
    parent = world.auth()
    sub = world.sub_auth(parent)
    agent = make_agent(sub, world.mapping)
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await agent.get(f"{RESOURCE}/data")).status_code)

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        group.start_soon(one)
    assert statuses == [200, 200]
    assert world.resource.challenges["auth-token"] == 2
    assert world.ps.hits["person"] == 1 and world.ps.hits["token"] == 1
    assert world.ps.hits["metadata"] == 1  # the PS metadata, from the parent's cache

    # cached: no PS call for the next ones
    for _ in range(2):
        assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["person"] == 1 and world.ps.hits["token"] == 1

    # the parent's own request is its own: its own tokens, no subagent_token
    world.ps.barrier = None
    parent_agent = make_agent(parent, world.mapping)
    assert (await parent_agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["person"] == 2 and world.ps.hits["token"] == 2
    assert "subagent_token" not in world.ps.bodies["person"][1]
    assert "subagent_token" not in world.ps.bodies["token"][1]
    parent_held = _held(parent, world, "auth")
    sub_held = _held(sub, world, "auth")
    assert parent_held is not None and sub_held is not None and parent_held != sub_held
    assert _cnf_thumbprint(parent_held.raw) == world.identity.key.public_key.thumbprint()
    assert world.ps.hits["metadata"] == 1


async def test_concurrent_sub_agent_person_tokens_share_one_request(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 3
    sub = world.sub_auth(world.auth())
    agent = make_agent(sub, world.mapping)
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await agent.get(f"{RESOURCE}/profile")).status_code)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(one)
    assert statuses == [200, 200, 200]
    assert world.ps.hits["person"] == 1
    # the pending request is the parent's: it polls it, signing as itself
    assert world.ps.hits["pending-GET"] == 3
    assert set(world.ps.signers) == {AGENT_ID}


async def test_deferred_consent_surfaces_for_the_parent(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_requirement = "interaction"
    asked: list[tuple[str, str]] = []

    def parent_interaction(url: str, code: str) -> None:
        asked.append((url, code))
        assert world.ps.consent(code)

    def sub_interaction(url: str, code: str) -> None:
        raise AssertionError("the sub-agent's callback is not asked about the parent's consent")

    parent = world.auth(on_interaction=parent_interaction)
    sub = world.sub_auth(parent, on_interaction=sub_interaction)
    agent = make_agent(sub, world.mapping)
    response = await agent.get(f"{RESOURCE}/data")
    assert response.status_code == 200, response.text
    assert len(asked) == 1 and asked[0][0] == f"{PS}/consent"
    assert world.ps.hits["pending-GET"] >= 1
    assert set(world.ps.signers) == {AGENT_ID}
    auth = _held(sub, world, "auth")
    assert auth is not None
    assert _cnf_thumbprint(auth.raw) == sub.identity.key.public_key.thumbprint()


async def test_a_resource_interaction_is_relayed_by_the_parent(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.on_relay = lambda url, code: world.resource.approve(code)
    shown: list[str] = []
    sub = world.sub_auth(world.auth(), on_interaction=lambda url, code: shown.append(code))
    agent = make_agent(sub, world.mapping)
    assert (await agent.get(f"{RESOURCE}/session")).status_code == 200
    assert shown == []  # the PS reached the person, asked by the parent
    assert world.ps.hits["interaction"] == 1 and world.ps.signers == [AGENT_ID]
    assert world.ps.bodies["interaction"][0]["url"] == f"{RESOURCE}/interact"


async def test_without_a_relay_the_sub_agent_directs_the_person(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.interaction_mode = "unavailable"
    shown: list[str] = []

    def on_interaction(url: str, code: str) -> None:
        shown.append(code)
        world.resource.approve(code)

    sub = world.sub_auth(world.auth(), on_interaction=on_interaction)
    agent = make_agent(sub, world.mapping)
    assert (await agent.get(f"{RESOURCE}/session")).status_code == 200
    assert len(shown) == 1 and world.ps.signers == [AGENT_ID]


async def test_events_of_the_parents_calls_go_to_the_parent(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    parent_events: list[FlowEvent] = []
    sub_events: list[FlowEvent] = []
    parent = world.auth(on_event=parent_events.append)
    sub = world.sub_auth(parent, on_event=sub_events.append)
    agent = make_agent(sub, world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200

    def sent(events: list[FlowEvent]) -> list[str]:
        return [e.url for e in events if isinstance(e, RequestSent)]

    assert sent(parent_events) == [f"{PS}/person", f"{PS}/token"]
    assert sent(sub_events) == [f"{RESOURCE}/data"] * 3
    assert [e.token_type for e in sub_events if isinstance(e, TokenObtained)] == ["person", "auth"]
    assert not [e for e in parent_events if isinstance(e, TokenObtained)]


async def test_a_person_token_bound_to_the_parent_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.bind_to_signer = True  # the PS ignores subagent_token's key
    sub = world.sub_auth(world.auth())
    agent = make_agent(sub, world.mapping)
    with pytest.raises(PersonTokenError, match="cnf"):
        await agent.get(f"{RESOURCE}/profile")
    assert _held(sub, world, "person") is None
    assert [s.credential for s in world.resource.seen] == ["agent"]


async def test_an_auth_token_bound_to_the_parent_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    sub = world.sub_auth(world.auth())
    agent = make_agent(sub, world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    world.ps.bind_to_signer = True
    with pytest.raises(AuthTokenVerificationError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.code == "invalid_auth_token"
    assert world.ps.hits["token"] == 1
    assert _held(sub, world, "auth") is None
    assert "auth" not in [s.credential for s in world.resource.seen]


async def test_sub_agent_makes_no_governance_calls(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    sub = world.sub_auth(world.auth())
    agent = make_agent(sub, world.mapping)
    with pytest.raises(ConfigurationError, match="sub-agent"):
        await agent.governance("request_permission", "delete a file")
    assert world.ps.hits.total() == 0


# -- configuration ---------------------------------------------------------------------------


def test_a_sub_agent_needs_its_parent(world: World) -> None:
    with pytest.raises(ConfigurationError, match="parent="):
        AAuth(world.sub_identity())


def test_the_parent_must_not_be_a_sub_agent(world: World) -> None:
    parent = world.auth()
    middle = world.sub_auth(parent)
    with pytest.raises(ConfigurationError, match="Single-Level"):
        AAuth(world.sub_identity("deeper"), parent=middle)


def test_the_identity_must_be_a_sub_agent(world: World) -> None:
    plain = world.sub_identity(parent_agent=None)
    with pytest.raises(ConfigurationError, match="no parent_agent"):
        AAuth(plain, parent=world.auth())
    with pytest.raises(ConfigurationError, match="no parent_agent"):
        AAuth(world.identity, parent=world.auth())


def test_the_parent_must_be_the_one_named(world: World) -> None:
    other = world.sub_identity(parent_agent="aauth:someone-else@agent.example")
    with pytest.raises(ConfigurationError, match=re.escape(f"not of {AGENT_ID}")):
        AAuth(other, parent=world.auth())


def test_parent_and_sub_agent_share_a_person_server(world: World) -> None:
    key = PrivateKey.generate()
    token = mint_agent_token(
        world.ap_key,
        iss="https://agent.example",
        sub=SUB_ID,
        cnf=key.public_key,
        ps="https://other-ps.example",
        parent_agent=AGENT_ID,
        clock=world.clock,
    )
    with pytest.raises(ConfigurationError, match="person server"):
        AAuth(AgentIdentity(key, token, clock=world.clock), parent=world.auth())


def test_the_sub_agent_has_its_own_key(world: World) -> None:
    token = mint_agent_token(
        world.ap_key,
        iss="https://agent.example",
        sub=SUB_ID,
        cnf=world.agent_key.public_key,
        ps=PS,
        parent_agent=AGENT_ID,
        clock=world.clock,
    )
    with pytest.raises(ConfigurationError, match="key of its own"):
        AAuth(AgentIdentity(world.agent_key, token, clock=world.clock), parent=world.auth())


def test_the_parent_is_an_aauth(world: World) -> None:
    with pytest.raises(ConfigurationError, match="parent must be"):
        AAuth(world.sub_identity(), parent=object())  # type: ignore[arg-type]


def test_sync_and_async_share_the_sub_agents_caches(world: World) -> None:
    """One sub-agent AAuth serves httpx.Client and httpx.AsyncClient over the same caches."""
    sub = world.sub_auth(world.auth())
    with httpx.Client(auth=sub, transport=MappedTransport(world.mapping, strict=True)) as client:
        assert client.get(f"{RESOURCE}/data").status_code == 200
    from aauth_agents.transport import AsyncMappedTransport

    async def run() -> int:
        async with httpx.AsyncClient(
            auth=sub, transport=AsyncMappedTransport(world.mapping, strict=True)
        ) as client:
            return (await client.get(f"{RESOURCE}/data")).status_code

    assert anyio.run(run) == 200
    assert world.ps.hits["person"] == 1 and world.ps.hits["token"] == 1
