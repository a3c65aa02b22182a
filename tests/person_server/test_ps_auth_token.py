"""§PS Token Endpoint (three-party) over real HTTP: resource-token verification (steps 1-7),
scope, identity claims, lifetimes, consent, sub-agents -- and one test per rejection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.ps import DOCS, PASSWORD, PS, RES, Agent, World, problem

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import AutoApprove, Decision
from aauth_agents.tokens import mint_resource_token, peek


async def resource_token(
    world: World, agent: Agent, scope: str = "data.read", resource: str = RES, **body: Any
) -> str:
    person = await agent.person_token(resource, **body)
    target = world.resource if resource == RES else world.docs
    return await target.resource_token(person, agent.public, scope)


async def token(agent: Agent, rt: str, **body: Any):  # type: ignore[no-untyped-def]
    return await agent.post("/token", {"resource_token": rt, **body})


async def test_auth_token_three_party(auto: World) -> None:
    agent = auto.agent()
    person = await agent.person_token()
    sub = peek(person)[1]["sub"]
    rt = await auto.resource.resource_token(person, agent.public, "data.read data.write")
    response = await token(agent, rt, justification="sync your files")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"auth_token", "expires_in"}
    claims = await auto.check_auth_token(
        body["auth_token"], agent.public, sub=sub, scope="data.read data.write", not_after=agent.exp
    )
    assert body["expires_in"] == claims["exp"] - claims["iat"] == 3600


async def test_identity_scopes_release_identity_claims(auto: World) -> None:
    agent = auto.agent()
    person = await agent.person_token()
    rt = await auto.resource.resource_token(
        person, agent.public, "openid email profile phone data.read"
    )
    response = await token(agent, rt)
    assert response.status_code == 200, response.text
    await auto.check_auth_token(
        response.json()["auth_token"],
        agent.public,
        sub=peek(person)[1]["sub"],
        scope="openid email profile phone data.read",
        not_after=agent.exp,
        extra={
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "phone_number": "+1 555 0100",
        },
    )


async def test_account_and_tenant_are_copied(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="carol")
    assert bare.ps is not None
    bare.ps.accounts.create_account("carol", PASSWORD, tenant="acme")
    agent = bare.agent()
    person = await agent.person_token()
    rt = await bare.resource.resource_token(person, agent.public, "data.read", account="carol@work")
    response = await token(agent, rt)
    assert response.status_code == 200, response.text
    await bare.check_auth_token(
        response.json()["auth_token"],
        agent.public,
        sub=peek(person)[1]["sub"],
        scope="data.read",
        tenant="acme",
        account="carol@work",
        not_after=agent.exp,
    )


async def test_lifetime_never_past_the_agent_token(auto: World) -> None:
    agent = auto.agent()
    auto.clock.advance(3300)  # 300 s of agent token left
    rt = await resource_token(auto, agent)
    response = await token(agent, rt)
    assert response.status_code == 200, response.text
    claims = peek(response.json()["auth_token"])[1]
    assert claims["exp"] == agent.exp == claims["iat"] + 300
    assert response.json()["expires_in"] == 300


async def test_consent_first_time_then_remembered_and_asked_again_when_broader(
    world: World,
) -> None:
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    # The person token for this resource needs consent too.
    first = await agent.post("/person", {"resource": RES})
    view = await _lookup(world, first)
    assert view.kind == "person_token" and not view.new_agent and view.account == "alice"
    await world.ps.interactions.approve(view.id, "alice")
    person = (await agent.poll(first)).json()["person_token"]
    rt = await world.resource.resource_token(person, agent.public, "data.read data.write")
    asked = await token(agent, rt, justification="**sync**")
    assert asked.status_code == 202
    view = await _lookup(world, asked)
    assert [(s.scope, s.description, s.identity) for s in view.scopes] == [
        ("data.read", "Read your documents", False),
        ("data.write", "Change your documents", False),
    ]
    assert view.justification == "**sync**"
    await world.ps.interactions.approve(view.id, "alice", scopes=["data.read"])
    granted = await agent.poll(asked)
    assert granted.status_code == 200, granted.text
    assert peek(granted.json()["auth_token"])[1]["scope"] == "data.read"
    # Same resource and scope: no question asked.
    rt2 = await world.resource.resource_token(person, agent.public, "data.read")
    again = await token(agent, rt2)
    assert again.status_code == 200
    # Broader: asked again.
    rt3 = await world.resource.resource_token(person, agent.public, "data.read data.write")
    assert (await token(agent, rt3)).status_code == 202


async def _lookup(world: World, response):  # type: ignore[no-untyped-def]
    assert world.ps is not None
    requirement = parse_requirement(response.headers["aauth-requirement"])
    return await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)


async def test_parent_mediated_sub_agent(auto: World) -> None:
    parent = auto.agent("planner")
    child = auto.subagent(parent, "search1")
    # 1. The parent gets a person token for the sub-agent.
    response = await parent.post("/person", {"resource": RES, "subagent_token": child.token})
    assert response.status_code == 200, response.text
    person = response.json()["person_token"]
    await auto.check_person_token(person, child.public, not_after=min(parent.exp, child.exp))
    # 2. The sub-agent presents it and gets a resource token bound to its own key.
    rt = await auto.resource.resource_token(person, child.public, "data.read")
    # 3. The parent asks, signing with its key, naming the sub-agent.
    granted = await token(parent, rt, subagent_token=child.token)
    assert granted.status_code == 200, granted.text
    await auto.check_auth_token(
        granted.json()["auth_token"],
        child.public,
        sub=peek(person)[1]["sub"],
        scope="data.read",
        not_after=min(parent.exp, child.exp),
    )


async def test_sub_agent_may_not_call_the_ps(auto: World) -> None:
    parent = auto.agent("planner")
    child = auto.subagent(parent)
    for path, body in (
        ("/person", {"resource": RES}),
        ("/token", {"resource_token": "x"}),
        ("/mission", {"description": "x"}),
    ):
        response = await child.post(path, body)
        assert response.status_code == 400 and problem(response) == "invalid_agent_token"


async def test_subagent_token_of_another_parent_is_refused(auto: World) -> None:
    parent, other = auto.agent("planner"), auto.agent("other")
    child = auto.subagent(other)
    response = await parent.post("/person", {"resource": RES, "subagent_token": child.token})
    assert response.status_code == 400 and problem(response) == "invalid_agent_token"


async def test_subagent_token_that_is_not_a_sub_agents_is_refused(auto: World) -> None:
    parent, other = auto.agent("planner"), auto.agent("other")
    response = await parent.post("/person", {"resource": RES, "subagent_token": other.token})
    assert response.status_code == 400 and problem(response) == "invalid_agent_token"


async def test_resource_token_for_the_sub_agent_without_subagent_token_is_refused(
    auto: World,
) -> None:
    parent = auto.agent("planner")
    child = auto.subagent(parent)
    person = (
        await parent.post("/person", {"resource": RES, "subagent_token": child.token})
    ).json()["person_token"]
    rt = await auto.resource.resource_token(person, child.public)
    response = await token(parent, rt)  # agent_jkt is the child's, the signer is the parent
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_concurrent_requests_from_one_agent_are_independent(world: World) -> None:
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
    await world.ps.db.run(
        world.ps.state.remember_consent,
        "alice",
        "https://agents.example",
        agent.agent_id,
        DOCS,
        "person_token",
        None,
        (),
        world.clock(),
    )
    await world.ps.db.run(
        world.ps.state.remember_consent,
        "alice",
        "https://agents.example",
        agent.agent_id,
        RES,
        "auth_token",
        None,
        ("data.read",),
        world.clock(),
    )
    person_res = await agent.person_token(RES)
    person_docs = await agent.person_token(DOCS)
    rts = [
        await world.resource.resource_token(person_res, agent.public, "data.read"),
        await world.docs.resource_token(person_docs, agent.public, "docs.read"),
        await world.resource.resource_token(person_res, agent.public, "data.write"),
    ]
    responses = await asyncio.gather(*(token(agent, rt) for rt in rts))
    assert [r.status_code for r in responses] == [200, 202, 202]
    assert responses[1].headers["location"] != responses[2].headers["location"]
    docs_view = await _lookup(world, responses[1])
    write_view = await _lookup(world, responses[2])
    await world.ps.interactions.deny(write_view.id)
    await world.ps.interactions.approve(docs_view.id, "alice")
    polled = await asyncio.gather(agent.poll(responses[1]), agent.poll(responses[2]))
    assert polled[0].status_code == 200
    assert peek(polled[0].json()["auth_token"])[1]["aud"] == DOCS
    assert polled[1].status_code == 403 and problem(polled[1]) == "denied"


# -- §Resource Token Verification: one test per rejection -----------------------------------


async def test_missing_resource_token(auto: World) -> None:
    response = await auto.agent().post("/token", {"justification": "x"})
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_upstream_token_is_not_supported(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    response = await token(agent, rt, upstream_token="a.b.c")
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_resource_token_with_a_bad_signature(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    from aauth_agents.keys import PrivateKey

    forged = auto.resource.reissue(rt, key=PrivateKey.generate(kid="res-1"))
    response = await token(agent, forged)
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_expired_resource_token(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    auto.clock.advance(301)
    response = await token(agent, rt)
    assert response.status_code == 400 and problem(response) == "expired_resource_token"


async def test_resource_token_for_another_ps(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    response = await token(agent, auto.resource.reissue(rt, aud="https://other-ps.example"))
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_resource_token_for_another_key(auto: World) -> None:
    agent, other = auto.agent("one"), auto.agent("two")
    rt = await resource_token(auto, agent)
    response = await token(other, rt)
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_unknown_person_token(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    response = await token(
        agent,
        auto.resource.reissue(rt, presented_jti="never-issued", person_token_jti="never-issued"),
    )
    assert response.status_code == 400 and problem(response) == "unknown_person_token"


async def test_person_token_jti_alone_is_accepted(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    response = await token(agent, auto.resource.reissue(rt, drop=("presented_jti",)))
    assert response.status_code == 200, response.text


async def test_presented_jti_alone_is_accepted(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    response = await token(agent, auto.resource.reissue(rt, drop=("person_token_jti",)))
    assert response.status_code == 200, response.text


async def test_presented_jti_and_person_token_jti_disagree(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    other = await agent.person_token()
    response = await token(agent, auto.resource.reissue(rt, person_token_jti=peek(other)[1]["jti"]))
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


@pytest.mark.parametrize("claim", ["sub", "tenant", "ps"])
async def test_resource_token_disagreeing_with_the_person_token(auto: World, claim: str) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent)
    value = {"sub": "0" * 32, "tenant": "evil", "ps": "https://other-ps.example"}[claim]
    response = await token(agent, auto.resource.reissue(rt, **{claim: value}))
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"
    assert any(e.name == "tampering" for e in auto.events)


async def test_mission_stripping_is_detected(auto: World) -> None:
    agent = auto.agent()
    mission = (await agent.post("/mission", {"description": "plan"})).json()["s256"]
    rt = await resource_token(auto, agent, mission_s256=mission)
    assert peek(rt)[1]["mission_s256"] == mission
    response = await token(agent, auto.resource.reissue(rt, drop=("mission_s256",)))
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"
    tampering = [e for e in auto.events if e.name == "tampering"]
    assert tampering and tampering[0].detail["mismatch"] == ["mission_s256"]


async def test_person_token_of_another_resource(auto: World) -> None:
    agent = auto.agent()
    docs_person = await agent.person_token(DOCS)
    docs_claims = await auto.docs.verify_person_token(docs_person, agent.public)
    # The resource names a person token issued for another audience.
    rt = mint_resource_token(
        auto.resource.key,
        iss=RES,
        aud=PS,
        agent_jkt=agent.public.thumbprint(),
        scope="data.read",
        ps=PS,
        sub=docs_claims.sub,
        presented_jti=docs_claims.jti,
        clock=auto.clock,
    )
    response = await token(agent, rt)
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_person_token_issued_to_another_agent(auto: World) -> None:
    one, two = auto.agent("one"), auto.agent("two")
    person = await one.person_token()
    claims = await auto.resource.verify_person_token(person, one.public)
    rt = mint_resource_token(
        auto.resource.key,
        iss=RES,
        aud=PS,
        agent_jkt=two.public.thumbprint(),
        scope="data.read",
        ps=PS,
        sub=claims.sub,
        presented_jti=claims.jti,
        clock=auto.clock,
    )
    response = await token(two, rt)
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_person_token_records_outlive_the_token_by_the_resource_token_lifetime(
    auto: World,
) -> None:
    agent = auto.agent()
    person = await agent.person_token()
    auto.clock.advance(3500)
    rt = await auto.resource.resource_token(person, agent.public)  # person token still valid
    auto.clock.advance(200)  # the person token and the agent token have expired
    agent.refresh()
    response = await token(agent, rt)
    assert response.status_code == 200, response.text  # the record is retained


async def test_person_token_records_are_forgotten_after_retention(auto: World) -> None:
    agent = auto.agent()
    person = await agent.person_token()
    rt = await auto.resource.resource_token(person, agent.public)
    auto.clock.advance(3600 + 300)  # past the person token's exp + 300 s
    agent.refresh()
    assert auto.ps is not None
    assert await auto.ps.purge() >= 1
    now = int(auto.clock())
    # A resource token (otherwise valid now) naming that person token.
    late = auto.resource.reissue(rt, iat=now, exp=now + 300)
    response = await token(agent, late)
    assert response.status_code == 400 and problem(response) == "unknown_person_token"


async def test_identity_scope_the_ps_does_not_support(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="alice", scopes_supported=["openid"])
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    rt = await resource_token(bare, agent, "openid email")
    response = await token(agent, rt)
    assert response.status_code == 400 and problem(response) == "invalid_scope"


async def test_resource_scope_the_resource_does_not_describe(auto: World) -> None:
    agent = auto.agent()
    rt = await resource_token(auto, agent, "data.read admin.everything")
    response = await token(agent, rt)
    assert response.status_code == 400 and problem(response) == "invalid_scope"


async def test_unbound_agent_cannot_use_someone_elses_person_token(world: World) -> None:
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
    rt = await resource_token(world, agent)
    await world.ps.unbind_agent(agent.agent_id)
    response = await token(agent, rt)
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"


async def test_a_policy_cannot_widen_the_scope(bare: World) -> None:
    bare.start(
        policy=lambda request: Decision.approve(scopes=("data.read", "data.write")),
        default_person="alice",
    )
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    rt = await resource_token(bare, agent, "data.read")
    response = await token(agent, rt)
    assert response.status_code == 200, response.text
    assert peek(response.json()["auth_token"])[1]["scope"] == "data.read"


async def test_expired_subagent_token(auto: World) -> None:
    parent = auto.agent("planner")
    child = auto.subagent(parent)
    auto.clock.advance(3601)
    parent.refresh()
    response = await parent.post("/person", {"resource": RES, "subagent_token": child.token})
    assert response.status_code == 400 and problem(response) == "expired_agent_token"


async def test_malformed_subagent_token(auto: World) -> None:
    parent = auto.agent("planner")
    response = await parent.post("/person", {"resource": RES, "subagent_token": "not.a.jwt"})
    assert response.status_code == 400 and problem(response) == "invalid_agent_token"
