"""§Token Revocation over real HTTP: the agent provider revokes an agent token at the PS; the
PS refuses it and revokes, at each resource's revocation endpoint, every auth token it
issued for that agent. Revoking a mission or a binding does the same for its tokens."""

from __future__ import annotations

import json
from typing import Any

from support.ps import AP, DOCS, PASSWORD, PS, RES, Agent, World, problem

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.servers.person_server import AutoApprove
from aauth_agents.tokens import DWK_AGENT, peek


async def auth_token(world: World, agent: Agent, resource: str = RES, **person: Any) -> str:
    target = world.resource if resource == RES else world.docs
    scope = "data.read" if resource == RES else "docs.read"
    pt = await agent.person_token(resource, **person)
    rt = await target.resource_token(pt, agent.public, scope)
    response = await agent.post("/token", {"resource_token": rt})
    assert response.status_code == 200, response.text
    return str(response.json()["auth_token"])


async def revoke(
    world: World, iss: str, jti: str, *, key: PrivateKey | None = None, caller: str = AP
) -> Any:
    """The agent provider's call: signed with its own key (Signature-Key jwks_uri)."""
    signer = key or world.ap.key
    body = json.dumps({"iss": iss, "jti": jti}).encode()
    url = f"{PS}/revoke"
    signed = sign_request(
        HttpRequest("POST", url, {"content-type": "application/json"}, body),
        key=signer,
        signature_key=SignatureKey.from_jwks_uri(id=caller, dwk=DWK_AGENT, kid=str(signer.kid)),
        clock=world.clock,
    )
    return await world.client.post(
        url, content=body, headers={"content-type": "application/json", **signed}
    )


def jtis(token: str) -> str:
    return str(peek(token)[1]["jti"])


async def test_agent_provider_revokes_an_agent_token(auto: World) -> None:
    agent, bystander = auto.agent("bad"), auto.agent("good")
    issued = [await auth_token(auto, agent), await auth_token(auto, agent, DOCS)]
    kept = await auth_token(auto, bystander)
    revoked_jti = jtis(agent.token)
    response = await revoke(auto, AP, revoked_jti)
    assert response.status_code == 200, response.text
    assert response.json() == {"revoked_auth_tokens": 2, "notified": 2}
    # Each resource was told, in a request signed by the PS, about its own token only.
    assert auto.resource.revoked == [{"iss": PS, "jti": jtis(issued[0])}]
    assert auto.docs.revoked == [{"iss": PS, "jti": jtis(issued[1])}]
    assert jtis(kept) not in json.dumps(auto.resource.revoked)
    assert any(e.name == "revoked" and e.jti == revoked_jti for e in auto.events)
    # The PS refuses the revoked agent token from now on...
    refused = await agent.post("/person", {"resource": RES})
    assert refused.status_code == 401
    assert refused.headers["signature-error"] == "error=invalid_jwt"
    # ...but not the agent's next token, nor other agents.
    agent.refresh()
    assert (await agent.post("/person", {"resource": RES})).status_code == 200
    assert (await bystander.post("/person", {"resource": RES})).status_code == 200
    # Revoking again is fine (already invalid): 200, and nothing is sent twice.
    again = await revoke(auto, AP, revoked_jti)
    assert again.status_code == 200 and again.json()["revoked_auth_tokens"] == 0
    assert len(auto.resource.revoked) == 1


async def test_revocation_of_an_unknown_agent_token(auto: World) -> None:
    agent = auto.agent()  # never seen by the PS
    response = await revoke(auto, AP, jtis(agent.token))
    assert response.status_code == 404
    refused = await agent.post("/person", {"resource": RES})
    assert refused.status_code == 401  # refused all the same


async def test_only_the_issuer_may_revoke(auto: World) -> None:
    agent = auto.agent()
    await auth_token(auto, agent)
    response = await revoke(auto, "https://other-ap.example", jtis(agent.token))
    assert response.status_code == 403 and problem(response) == "access_denied"
    assert auto.resource.revoked == []


async def test_revocation_signed_by_a_key_the_issuer_does_not_publish(auto: World) -> None:
    agent = auto.agent()
    await auth_token(auto, agent)
    response = await revoke(auto, AP, jtis(agent.token), key=PrivateKey.generate(kid="ap-1"))
    assert response.status_code == 401 and "signature-error" in response.headers
    assert (await agent.post("/person", {"resource": RES})).status_code == 200


async def test_revocation_signed_with_an_agent_token_is_refused(auto: World) -> None:
    agent = auto.agent()
    response = await agent.post("/revoke", {"iss": AP, "jti": jtis(agent.token)})
    assert response.status_code == 401
    assert response.headers["signature-error"] == "error=unsupported_scheme"


async def test_malformed_revocation(auto: World) -> None:
    signer = auto.ap.key
    body = b'{"iss": "https://agents.example"}'
    signed = sign_request(
        HttpRequest("POST", f"{PS}/revoke", {"content-type": "application/json"}, body),
        key=signer,
        signature_key=SignatureKey.from_jwks_uri(id=AP, dwk=DWK_AGENT, kid=str(signer.kid)),
        clock=auto.clock,
    )
    response = await auto.client.post(
        f"{PS}/revoke", content=body, headers={"content-type": "application/json", **signed}
    )
    assert response.status_code == 400 and problem(response) == "invalid_request"


async def test_revoking_a_mission_revokes_its_auth_tokens(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    s256 = (await agent.post("/mission", {"description": "x"})).json()["s256"]
    inside = await auth_token(auto, agent, mission_s256=s256)
    outside = await auth_token(auto, agent)
    await auto.ps.terminate_mission(s256, "revoked")
    assert auto.resource.revoked == [{"iss": PS, "jti": jtis(inside)}]
    assert jtis(outside) not in json.dumps(auto.resource.revoked)


async def test_completing_a_mission_does_not_revoke(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    s256 = (await agent.post("/mission", {"description": "x"})).json()["s256"]
    await auth_token(auto, agent, mission_s256=s256)
    done = await agent.post(f"/mission/{s256}", {"action": "completion", "summary": "done"})
    assert done.status_code == 200
    assert auto.resource.revoked == []


async def test_unbinding_an_agent_revokes_its_auth_tokens(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    token = await auth_token(auto, agent)
    report = await auto.ps.unbind_agent(agent.agent_id)
    assert report.revoked == (jtis(token),) and report.notified == (jtis(token),)
    assert auto.resource.revoked == [{"iss": PS, "jti": jtis(token)}]


async def test_failed_notifications_are_retried(auto: World) -> None:
    assert auto.ps is not None
    agent = auto.agent()
    token = await auth_token(auto, agent)
    auto.resource.revocation_status = 503
    outcome = await auto.ps.revoke_agent_token(AP, jtis(agent.token))
    assert outcome.known and outcome.agent_id == agent.agent_id
    assert outcome.report.revoked == (jtis(token),)
    assert list(outcome.report.failed) == [jtis(token)]
    auto.resource.revocation_status = 200
    retried = await auto.ps.retry_revocations()
    assert retried.notified == (jtis(token),) and not retried.failed
    assert (await auto.ps.retry_revocations()).notified == ()


async def test_resource_without_a_revocation_endpoint(bare: World) -> None:
    from support.ps import Resource

    bare.resource = Resource(RES, bare.clock, revocation=False)
    bare.start(policy=AutoApprove(), default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", PASSWORD)
    agent = bare.agent()
    token = await auth_token(bare, agent)
    outcome = await bare.ps.revoke_agent_token(AP, jtis(agent.token))
    assert "revocation_endpoint" in outcome.report.failed[jtis(token)]


async def test_sub_agent_tokens_are_revoked_with_the_parent(auto: World) -> None:
    parent = auto.agent("planner")
    child = auto.subagent(parent)
    pt = (await parent.post("/person", {"resource": RES, "subagent_token": child.token})).json()[
        "person_token"
    ]
    rt = await auto.resource.resource_token(pt, child.public)
    token = (
        await parent.post("/token", {"resource_token": rt, "subagent_token": child.token})
    ).json()["auth_token"]
    response = await revoke(auto, AP, jtis(parent.token))
    assert response.status_code == 200
    assert auto.resource.revoked == [{"iss": PS, "jti": jtis(token)}]
