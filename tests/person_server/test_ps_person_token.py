"""§Person Token Endpoint over real HTTP: consent on first issuance, directed ``sub``,
missions, sub-agents, retention, and one test per rejection."""

from __future__ import annotations

import pytest
from support.ps import DOCS, PASSWORD, PS, RES, World, problem

from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.servers.person_server import AutoApprove


async def consent(world: World, agent_response, account: str = "alice"):  # type: ignore[no-untyped-def]
    """The person opens the interaction link, signs in and approves."""
    assert world.ps is not None
    requirement = parse_requirement(agent_response.headers["aauth-requirement"])
    interaction_id = requirement.url.rsplit("/", 1)[1]
    view = await world.ps.interactions.lookup(interaction_id, requirement.code)
    assert world.ps.accounts.authenticate(account, PASSWORD) is not None
    return await world.ps.interactions.approve(view.id, account)


async def test_first_person_token_needs_consent_showing_the_resource(world: World) -> None:
    agent = world.agent()
    response = await agent.post("/person", {"resource": RES, "justification": "# Why\nto read"})
    assert response.status_code == 202
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["retry-after"] == "0"
    assert response.headers["location"].startswith(f"{PS}/pending/")
    assert response.json() == {"status": "pending"}
    requirement = parse_requirement(response.headers["aauth-requirement"])
    assert requirement.value == "interaction"
    assert requirement.url.startswith(f"{PS}/interact/")
    assert world.ps is not None
    interaction_id = requirement.url.rsplit("/", 1)[1]
    view = await world.ps.interactions.lookup(interaction_id, requirement.code.lower())
    assert view.kind == "person_token" and view.state == "pending"  # the code finds it
    assert view.resource is not None
    assert view.resource.name == "Example Data"
    assert view.resource.description == "**Example** stores your documents."
    assert view.resource.access_mode == "auth-token"
    assert view.justification == "# Why\nto read"
    assert view.new_agent and view.account is None
    assert view.provider_name == "Example Agents"
    assert (await agent.poll(response)).json() == {"status": "pending"}
    await world.ps.interactions.mark_interacting(view.id, "alice")  # signed in, looking
    polled = await agent.poll(response)
    assert polled.status_code == 202 and polled.json() == {"status": "interacting"}
    await world.ps.interactions.approve(view.id, "alice")
    done = await agent.poll(polled)
    assert done.status_code == 200, done.text
    body = done.json()
    assert set(body) == {"person_token", "expires_in"}
    claims = await world.check_person_token(body["person_token"], agent.public, not_after=agent.exp)
    assert body["expires_in"] == claims["exp"] - claims["iat"]
    gone = await agent.get(response.headers["location"])
    assert gone.status_code == 410
    # Consent is remembered: the next person token for that resource is immediate.
    again = await agent.person_token()
    claims_again = await world.check_person_token(again, agent.public, not_after=agent.exp)
    assert claims_again["sub"] == claims["sub"] and claims_again["jti"] != claims["jti"]


async def test_directed_sub_differs_per_resource_not_per_agent(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    bare.ps.accounts.create_account("bob", PASSWORD)
    a1, a2 = bare.agent("one"), bare.agent("two")
    s_res = (await bare.check_person_token(await a1.person_token(RES), a1.public))["sub"]
    s_docs = (await bare.check_person_token(await a1.person_token(DOCS), a1.public, resource=DOCS))[
        "sub"
    ]
    s_res_other_agent = (await bare.check_person_token(await a2.person_token(RES), a2.public))[
        "sub"
    ]
    assert s_res != s_docs
    assert s_res == s_res_other_agent  # same person, same resource, another agent
    bob_agent = bare.agent("bobs")
    bare.ps.bind_agent(bob_agent.agent_id, "bob")
    s_bob = (await bare.check_person_token(await bob_agent.person_token(RES), bob_agent.public))[
        "sub"
    ]
    assert s_bob != s_res


async def test_person_token_never_outlives_the_agent_token(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    bare.clock.advance(3000)  # the agent token (1 h) has 600 s left
    token = await agent.person_token()
    await bare.check_person_token(token, agent.public, not_after=agent.exp)
    assert agent.exp == bare.clock() + 600


async def test_tenant_of_the_account_is_stamped(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="carol")
    assert bare.ps is not None
    bare.ps.accounts.create_account("carol", PASSWORD, tenant="acme")
    agent = bare.agent()
    await bare.check_person_token(await agent.person_token(), agent.public, tenant="acme")


async def test_denied_person_token(world: World) -> None:
    agent = world.agent()
    response = await agent.post("/person", {"resource": RES})
    requirement = parse_requirement(response.headers["aauth-requirement"])
    assert world.ps is not None
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    await world.ps.interactions.deny(view.id)
    denied = await agent.poll(response)
    assert denied.status_code == 403 and problem(denied) == "denied"
    assert "signature-error" not in denied.headers
    assert (await agent.get(response.headers["location"])).status_code == 410


async def test_agent_without_interaction_capability_is_unreachable(world: World) -> None:
    agent = world.agent()
    response = await agent.post("/person", {"resource": RES, "capabilities": ["payment"]})
    assert response.status_code == 403 and problem(response) == "user_unreachable"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_request"),
        ({"resource": "http://resource.example"}, "invalid_request"),
        ({"resource": "https://resource.example/path"}, "invalid_request"),
        ({"resource": "https://Resource.example"}, "invalid_request"),
        ({"resource": RES, "mission_s256": "not-a-digest"}, "invalid_request"),
        ({"resource": RES, "upstream_token": "x.y.z"}, "invalid_request"),
        ({"resource": RES, "platform": "toaster"}, "invalid_request"),
        ({"resource": RES, "device": "a\nb"}, "invalid_request"),
        ({"resource": RES, "capabilities": "interaction"}, "invalid_request"),
        ({"resource": RES, "prompt": "sometimes"}, "invalid_request"),
        ({"resource": RES, "justification": 7}, "invalid_request"),
    ],
)
async def test_malformed_person_token_requests_are_refused(
    world: World, body: dict, code: str
) -> None:
    agent = world.agent()
    response = await agent.post("/person", body)
    assert response.status_code == 400 and problem(response) == code
    assert world.ps is not None
    assert (
        await world.ps.db.run(world.ps.state.binding, "https://agents.example", agent.agent_id)
        is None
    )


async def test_unknown_mission_is_refused(world: World) -> None:
    agent = world.agent()
    response = await agent.post("/person", {"resource": RES, "mission_s256": "A" * 43})
    assert response.status_code == 404 and problem(response) == "mission_not_found"


async def test_body_without_digest_coverage_is_refused(world: World) -> None:
    agent = world.agent()
    response = await agent.post(
        "/person", {"resource": RES}, components=["@method", "@authority", "@path", "signature-key"]
    )
    assert response.status_code == 401
    assert response.headers["signature-error"].startswith("error=invalid_input")
    assert "content-digest" in response.headers["signature-error"]


async def test_body_not_json_is_refused(world: World) -> None:
    agent = world.agent()
    response = await agent.post(
        "/person",
        b"resource=https://resource.example",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_unsigned_request_is_refused(world: World) -> None:
    response = await world.client.post(f"{PS}/person", json={"resource": RES})
    assert response.status_code == 401
    assert response.headers["signature-error"] == "error=invalid_request"


async def test_request_signed_for_another_authority_is_refused(world: World) -> None:
    agent = world.agent()
    from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request

    body = b'{"resource":"https://resource.example"}'
    signed = sign_request(
        HttpRequest(
            "POST", "https://other.example/person", {"content-type": "application/json"}, body
        ),
        key=agent.key,
        signature_key=SignatureKey.from_jwt(agent.token),
        clock=world.clock,
    )
    response = await world.client.post(
        f"{PS}/person", content=body, headers={"content-type": "application/json", **signed}
    )
    assert response.status_code == 401
    assert response.headers["signature-error"] == "error=invalid_signature"


async def test_expired_agent_token_is_refused(world: World) -> None:
    agent = world.agent()
    world.clock.advance(3601)
    response = await agent.post("/person", {"resource": RES})
    assert response.status_code == 401
    assert response.headers["signature-error"] == "error=expired_jwt"


async def test_person_token_in_signature_key_is_refused(bare: World) -> None:
    """Only agent tokens sign PS requests."""
    bare.start(policy=AutoApprove(), default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    person = await agent.person_token()
    response = await agent.post("/person", {"resource": RES}, token=person)
    assert response.status_code == 401
    assert response.headers["signature-error"] == "error=invalid_jwt"


async def test_rate_limit_on_distinct_resources(bare: World) -> None:
    bare.start(policy=AutoApprove(), default_person="alice", max_resources_per_day=1)
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    await agent.person_token(RES)
    await agent.person_token(RES)  # the same resource again is fine
    response = await agent.post("/person", {"resource": DOCS})
    assert response.status_code == 429 and problem(response) == "slow_down"
