"""AAuth against a real in-process resource and person server: every requirement of
§Requirement Responses, step-up, deferred delivery, two-party sessions, signature components,
caches and their renewal. Each test runs with httpx.Client and httpx.AsyncClient."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import pytest
from support.agent import PS, RESOURCE, Agent, World

from aauth_agents.agent import (
    ChallengeVerificationError,
    ExpiredResourceTokenError,
    NoPersonServerError,
    UserUnreachableError,
)
from aauth_agents.agent.errors import AuthTokenVerificationError
from aauth_agents.keys import PrivateKey


async def test_auth_token_three_party_and_caches(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(
        world.auth(
            justification="Read my data",
            login_hint="me@example.com",
            tenant="acme",
            domain_hint="acme.com",
            prompt="consent",
            platform="desktop",
            device="Laptop",
        ),
        world.mapping,
    )
    response = await agent.get(f"{RESOURCE}/data")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "data.read"
    assert world.ps.hits["person"] == 1 and world.ps.hits["token"] == 1
    again = await agent.get(f"{RESOURCE}/data")
    assert again.status_code == 200
    assert world.ps.hits["person"] == 1 and world.ps.hits["token"] == 1
    assert world.ps.hits["metadata"] == 1 and world.resource.hits["metadata"] == 1
    assert [s.credential for s in world.resource.seen] == ["agent", "person", "auth", "auth"]
    body = world.ps.bodies["token"][0]
    assert body["justification"] == "Read my data" and body["login_hint"] == "me@example.com"
    assert body["tenant"] == "acme" and body["domain_hint"] == "acme.com"
    assert body["prompt"] == "consent"
    assert body["platform"] == "desktop" and body["device"] == "Laptop"
    assert body["capabilities"] == ["interaction", "clarification"]
    assert world.ps.bodies["person"][0]["resource"] == RESOURCE
    # PS requests cover the body (§Covered Components) and carry Prefer: wait
    assert all({"content-type", "content-digest"} <= set(c) for c in world.ps.covered)
    assert world.ps.prefer == [30, 30]
    # resource requests declare capabilities
    assert world.resource.seen[0].capabilities == "interaction, clarification"


async def test_agent_token_requirement(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    # the resource now gets the person token; /agent wants the agent's own identity
    response = await agent.get(f"{RESOURCE}/agent")
    assert response.status_code == 200
    assert response.json() == {"agent": "aauth:assistant@agent.example"}
    assert [s.credential for s in world.resource.seen if s.path == "agent"] == ["person", "agent"]


async def test_person_token_requirement_and_cache(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    first = await agent.get(f"{RESOURCE}/profile")
    second = await agent.get(f"{RESOURCE}/profile")
    assert first.status_code == second.status_code == 200
    assert first.json()["sub"] == second.json()["sub"]
    assert world.ps.hits["person"] == 1
    assert world.resource.challenges["person-token"] == 1


async def test_person_token_under_a_mission(world: World, make_agent: Callable[..., Agent]) -> None:
    s256 = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    agent = make_agent(world.auth(mission_s256=s256), world.mapping)
    response = await agent.get(f"{RESOURCE}/profile")
    assert response.json()["mission_s256"] == s256
    assert world.ps.bodies["person"][0]["mission_s256"] == s256


async def test_access_mode_skips_the_speculative_challenge(
    make_agent: Callable[..., Agent],
) -> None:
    world = World(access_mode="auth-token")
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.resource.challenges["person-token"] == 0
    assert [s.credential for s in world.resource.seen] == ["person", "auth"]


async def test_without_anticipation_a_request_waits_only_for_its_own_challenge(
    make_agent: Callable[..., Agent],
) -> None:
    # anticipate=False (the MCP proxy): a request that needs only the agent token is never
    # held up getting a person token another request will need
    world = World(access_mode="auth-token")
    agent = make_agent(world.auth(anticipate=False), world.mapping)
    assert (await agent.get(f"{RESOURCE}/agent")).status_code == 200
    assert world.ps.hits["person"] == 0
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.resource.challenges["person-token"] == 1
    assert [s.credential for s in world.resource.seen] == ["agent", "agent", "person", "auth"]


async def test_step_up(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    response = await agent.post(f"{RESOURCE}/write", json={"x": 1})
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "data.read data.write"
    assert world.ps.hits["token"] == 2 and world.ps.hits["person"] == 1
    writes = [s for s in world.resource.seen if s.path == "write"]
    assert [s.credential for s in writes] == ["auth", "auth"]  # step-up, not person again
    # the broader token now serves both endpoints without another exchange
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == 2


async def test_deferred_auth_token_delivery(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    response = await agent.get(f"{RESOURCE}/slow")
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "slow done"
    assert world.resource.executions["slow"] == 1
    polls = [s for s in world.resource.seen if s.path == "pending"]
    assert [s.credential for s in polls] == ["auth"]
    assert polls[0].prefer == 30


async def test_deferred_delivery_with_fresh_resource_token(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.resource.fresh_rt_on_poll = True
    world.ps.token_requirement = "approval"
    world.ps.approval_rounds = 2
    agent = make_agent(world.auth(), world.mapping)
    response = await agent.get(f"{RESOURCE}/slow")
    assert response.status_code == 200
    assert world.resource.executions["slow"] == 1


async def test_two_party_interaction_and_rolling_session(make_agent: Callable[..., Agent]) -> None:
    world = World(ps_claim=False)
    shown: list[tuple[str, str]] = []

    def on_interaction(url: str, code: str) -> None:
        shown.append((url, code))
        world.resource.approve(code)  # the person completes the resource's own flow

    auth = world.auth(on_interaction=on_interaction)
    agent = make_agent(auth, world.mapping)
    first = await agent.get(f"{RESOURCE}/session")
    assert first.status_code == 200 and first.json() == {"status": "authorized"}
    assert shown and shown[0][0] == f"{RESOURCE}/interact"
    issued = world.resource.issued_sessions
    assert auth.session_token(RESOURCE) == issued[0]
    second = await agent.get(f"{RESOURCE}/session")
    assert second.json() == {"count": 1}
    assert auth.session_token(RESOURCE) == issued[1] != issued[0]
    third = await agent.get(f"{RESOURCE}/session")
    assert third.json() == {"count": 2}  # the replaced token was used: the old one is void
    with_session = [s for s in world.resource.seen if s.authorization]
    assert [s.authorization for s in with_session] == [f"AAuth {issued[0]}", f"AAuth {issued[1]}"]
    assert all("authorization" in s.covered for s in with_session)
    assert len(shown) == 1 and world.ps.hits.total() == 0


async def test_interaction_relayed_through_the_person_server(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.on_relay = lambda url, code: world.resource.approve(code)
    shown: list[str] = []
    agent = make_agent(
        world.auth(on_interaction=lambda url, code: shown.append(code)), world.mapping
    )
    response = await agent.get(f"{RESOURCE}/session")
    assert response.status_code == 200
    assert shown == []  # the PS reached the person
    assert world.ps.hits["interaction"] == 1
    relay = world.ps.bodies["interaction"][0]
    assert relay["type"] == "interaction" and relay["url"] == f"{RESOURCE}/interact"
    assert world.ps.prefer == [None]


async def test_relay_unavailable_falls_back_to_the_callback(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.interaction_mode = "unavailable"
    shown: list[str] = []

    def on_interaction(url: str, code: str) -> None:
        shown.append(code)
        world.resource.approve(code)

    agent = make_agent(world.auth(on_interaction=on_interaction), world.mapping)
    assert (await agent.get(f"{RESOURCE}/session")).status_code == 200
    assert len(shown) == 1 and world.ps.hits["interaction"] == 1


async def test_relay_unreachable_is_terminal(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.interaction_mode = "unreachable"
    agent = make_agent(world.auth(on_interaction=lambda url, code: None), world.mapping)
    with pytest.raises(UserUnreachableError):
        await agent.get(f"{RESOURCE}/session")


async def test_interaction_without_any_way_to_the_person(make_agent: Callable[..., Agent]) -> None:
    """An unattended agent with no PS to relay: the error names the page and code."""
    world = World(ps_claim=False)
    agent = make_agent(world.auth(unattended=True), world.mapping)
    with pytest.raises(UserUnreachableError) as caught:
        await agent.get(f"{RESOURCE}/session")
    assert caught.value.interaction_url == f"{RESOURCE}/interact"
    assert caught.value.interaction_code and caught.value.interaction_code in str(caught.value)


async def test_async_interaction_callback(world: World, make_agent: Callable[..., Agent]) -> None:
    world.ps.interaction_mode = "unavailable"

    async def on_interaction(url: str, code: str) -> None:
        await anyio.sleep(0)
        world.resource.approve(code)

    agent = make_agent(world.auth(on_interaction=on_interaction), world.mapping)
    assert (await agent.get(f"{RESOURCE}/session")).status_code == 200


async def test_additional_signature_components(make_agent: Callable[..., Agent]) -> None:
    world = World(additional_components=("content-type", "content-digest"))
    agent = make_agent(world.auth(), world.mapping)
    posted = await agent.post(f"{RESOURCE}/echo", json={"note": "milk"})
    assert posted.status_code == 200, posted.text
    assert {"content-type", "content-digest"} <= set(posted.json()["covered"])
    assert json.loads(posted.json()["body"]) == {"note": "milk"}
    fetched = await agent.get(f"{RESOURCE}/echo")
    assert fetched.status_code == 200
    assert "content-digest" not in fetched.json()["covered"]


async def test_without_metadata_the_body_is_not_covered(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    posted = await agent.post(f"{RESOURCE}/echo", json={"note": "milk"})
    assert "content-digest" not in posted.json()["covered"]
    assert "@query" in (await agent.get(f"{RESOURCE}/echo?x=1")).json()["covered"]


async def test_required_input_is_covered_on_retry(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    response = await agent.get(f"{RESOURCE}/strict")
    assert response.status_code == 200, response.text
    assert "aauth-capabilities" in response.json()["covered"]
    assert world.resource.hits["strict"] == 2
    assert (await agent.get(f"{RESOURCE}/strict")).status_code == 200
    assert world.resource.hits["strict"] == 3  # learned: no second invalid_input


async def test_no_person_server(make_agent: Callable[..., Agent]) -> None:
    world = World(ps_claim=False)
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(NoPersonServerError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.code == "unsupported_requirement"
    assert caught.value.requirement.value == "person-token"


async def test_challenge_with_foreign_agent_jkt_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.resource.rt_overrides = {"agent_jkt": PrivateKey.generate().thumbprint()}
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(ChallengeVerificationError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.reason == "agent_jkt"
    assert world.ps.hits["token"] == 0


async def test_challenge_from_another_issuer_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.resource.rt_issuer = "https://elsewhere.example"
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(ChallengeVerificationError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.reason == "iss"
    assert world.ps.hits["token"] == 0 and world.resource.hits["jwks"] == 0


async def test_challenge_signed_by_an_unknown_key_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.resource.key = PrivateKey.generate()  # signs with a key its JWKS does not publish
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(ChallengeVerificationError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.reason == "unknown_key"
    assert world.ps.hits["token"] == 0


async def test_auth_token_for_another_resource_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.auth_overrides = {"aud": "https://other.example"}
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(AuthTokenVerificationError) as caught:
        await agent.get(f"{RESOURCE}/data")
    assert caught.value.reason == "aud"
    assert [s.credential for s in world.resource.seen] == ["agent", "person"]


async def test_auth_token_signed_by_another_key_is_refused(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.auth_signing_key = PrivateKey.generate(kid=world.ps_key.kid)  # same kid
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(AuthTokenVerificationError):
        await agent.get(f"{RESOURCE}/data")


async def test_expired_resource_token_is_retried_once(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    world.ps.token_error = (400, "expired_resource_token")
    world.ps.token_errors_left = 1
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == 2 and world.resource.challenges["auth-token"] == 2
    world.ps.token_error = (400, "expired_resource_token")
    world.ps.token_errors_left = 10
    agent2 = make_agent(world.auth(), world.mapping)
    with pytest.raises(ExpiredResourceTokenError):
        await agent2.post(f"{RESOURCE}/write", content=b"x")


async def test_renewal_before_expiry(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(refresh_margin=120), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    world.clock.advance(3600 - 121)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == 1 and world.ps.hits["person"] == 1
    world.clock.advance(2)  # both tokens are now within the margin of exp
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == 2 and world.ps.hits["person"] == 2


async def test_key_rotation_flushes_the_caches(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    world.identity.rotate(PrivateKey.generate())
    assert (await agent.get(f"{RESOURCE}/data")).status_code == 200
    assert world.ps.hits["token"] == 2 and world.ps.hits["person"] == 2
    # the resource is known to want a person token: a fresh one is fetched up front
    assert [s.credential for s in world.resource.seen[-2:]] == ["person", "auth"]


async def test_agent_token_refresh_keeps_the_caches(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    world.identity.rotate(world.identity.key, world.agent_token(world.identity.key))
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    assert world.ps.hits["person"] == 1  # same key: the person token is still bound to it


async def test_concurrent_requests_share_one_exchange(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    # the PS answers only once both requests have been challenged, so both are in flight
    world.ps.barrier = lambda: world.resource.challenges["auth-token"] >= 2
    agent = make_agent(world.auth(), world.mapping)
    assert (await agent.get(f"{RESOURCE}/profile")).status_code == 200
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await agent.get(f"{RESOURCE}/data")).status_code)

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        group.start_soon(one)
    assert statuses == [200, 200]
    assert world.resource.challenges["auth-token"] == 2
    assert world.ps.hits["token"] == 1


async def test_concurrent_person_tokens_share_one_request(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(world.auth(), world.mapping)
    world.ps.person_requirement = "approval"
    world.ps.approval_rounds = 3
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await agent.get(f"{RESOURCE}/profile")).status_code)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(one)
    assert statuses == [200, 200, 200]
    assert world.ps.hits["person"] == 1


async def test_person_server_metadata_mismatch(
    world: World, make_agent: Callable[..., Agent]
) -> None:
    from aauth_agents.protocol.errors import IssuerMismatchError

    world.ps.issuer = "https://other-ps.example"  # its metadata now names another issuer
    agent = make_agent(world.auth(), world.mapping)
    with pytest.raises(IssuerMismatchError):
        await agent.get(f"{RESOURCE}/profile")
    assert world.ps.hits["person"] == 0


async def test_plain_responses_pass_through(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(world.auth(), world.mapping)
    missing = await agent.get(f"{RESOURCE}/nowhere")
    assert missing.status_code == 404
    assert PS  # the PS is never involved in a plain 404
    assert world.ps.hits.total() == 0


async def test_malformed_session_token_is_refused(make_agent: Callable[..., Agent]) -> None:
    world = World(ps_claim=False)
    world.resource.malformed_session = True  # "AAuth-Access: tok tok" is not one token68

    def on_interaction(url: str, code: str) -> None:
        world.resource.approve(code)

    auth = world.auth(on_interaction=on_interaction)
    agent = make_agent(auth, world.mapping)
    assert (await agent.get(f"{RESOURCE}/session")).status_code == 200
    assert auth.session_token(RESOURCE) is None
    await agent.get(f"{RESOURCE}/session")
    assert not any(s.authorization for s in world.resource.seen)
