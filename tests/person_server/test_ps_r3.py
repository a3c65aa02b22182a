"""The PS and R3 documents (draft-hardt-aauth-r3 §R3 Processing, §Hash Verification,
§Per-Call Proposals): a resource token carrying ``r3_uri`` / ``r3_s256`` makes the PS fetch
the document signed as itself, check its hash over the bytes received, show its ``display``
to the person -- every time: consent is never remembered for it -- and, approved, issue an
auth token echoing ``r3_uri`` / ``r3_s256`` with the document's operations in ``r3_granted``.
A document it cannot fetch, too large, too slow, malformed or not matching its hash refuses
the resource token (``invalid_resource_token``) and leaves nothing pending."""

from __future__ import annotations

from typing import Any

import pytest
from support.ps import PS, RES, Agent, World, problem

from aauth_agents.protocol.r3 import MAX_DOCUMENT_BYTES, MCP_VOCABULARY
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.tokens import peek

PROPOSAL = {
    "vocabulary": MCP_VOCABULARY,
    "operations": [{"tool": "send_note"}],
    "parameters": {"to": "bob@example.com", "text": "Lunch at noon?"},
    "display": {
        "summary": "Send a note to bob@example.com",
        "detail": "## Action\nSend a note\n\n## To\n`bob@example.com`",
        "irreversible": "A sent note cannot be unsent",
    },
}


async def r3_token(
    world: World, agent: Agent, document: Any = None, *, scope: str = "data.write", **claims: Any
) -> str:
    """A resource token for ``agent`` pinning ``document`` (published by the resource)."""
    person = await agent.person_token()
    uri, s256 = world.resource.publish(PROPOSAL if document is None else document)
    pin = {"r3_uri": uri, "r3_s256": s256, **claims}
    return await world.resource.resource_token(person, agent.public, scope, **pin)


async def test_the_ps_fetches_verifies_and_pins_the_document(auto: World) -> None:
    agent = auto.agent()
    rt = await r3_token(auto, agent)
    response = await agent.post("/token", {"resource_token": rt})
    assert response.status_code == 200, response.text
    rt_claims = peek(rt)[1]
    claims = await auto.check_auth_token(
        response.json()["auth_token"],
        agent.public,
        sub=rt_claims["sub"],
        scope="data.write",
        not_after=agent.exp,
        extra={
            "r3_uri": rt_claims["r3_uri"],
            "r3_s256": rt_claims["r3_s256"],
            "r3_granted": {"vocabulary": MCP_VOCABULARY, "operations": [{"tool": "send_note"}]},
        },
    )
    assert "r3_per_call" not in claims
    assert auto.resource.fetches == [PS]  # fetched once, signed by the PS itself
    issued = [e for e in auto.events if e.name == "issued_auth_token"]
    assert issued[-1].detail == {
        "scope": "data.write",
        "r3_uri": rt_claims["r3_uri"],
        "r3_s256": rt_claims["r3_s256"],
    }


async def test_the_person_is_asked_for_every_r3_request(world: World) -> None:
    """Interactive consent: the proposal's display reaches the person's view; approving it
    remembers no consent, so neither the next proposal nor the plain scope is covered."""
    assert world.ps is not None
    agent = world.agent()
    world.ps.bind_agent(agent.agent_id, "alice")
    for kind in ("person_token", "auth_token"):  # consent already given for the scope
        await world.ps.run(
            world.ps.state.remember_consent,
            "alice",
            "https://agents.example",
            agent.agent_id,
            RES,
            kind,
            None,
            ("data.write",) if kind == "auth_token" else (),
            world.clock(),
        )
    rt = await r3_token(world, agent)
    pending = await agent.post("/token", {"resource_token": rt})
    assert pending.status_code == 202, pending.text
    requirement = parse_requirement(pending.headers["aauth-requirement"])
    view = await world.ps.interactions.lookup(requirement.url.rsplit("/", 1)[1], requirement.code)
    assert view.r3 is not None and view.r3.per_call
    assert view.r3.summary == "Send a note to bob@example.com"
    assert view.r3.detail == PROPOSAL["display"]["detail"]
    assert view.r3.irreversible == "A sent note cannot be unsent"
    assert view.r3.parameters == PROPOSAL["parameters"]
    assert view.r3.operations == ("send_note",) and "r3" not in view.details
    await world.ps.interactions.approve(view.id, "alice")
    granted = await agent.poll(pending)
    assert granted.status_code == 200, granted.text
    assert peek(granted.json()["auth_token"])[1]["r3_s256"] == peek(rt)[1]["r3_s256"]
    # another call, another proposal: asked again
    other = {**PROPOSAL, "parameters": {"to": "carol@example.com", "text": "hi"}}
    again = await agent.post("/token", {"resource_token": await r3_token(world, agent, other)})
    assert again.status_code == 202
    # the plain scope was consented before and still is; nothing new was remembered
    plain = await world.resource.resource_token(
        await agent.person_token(), agent.public, "data.write"
    )
    assert (await agent.post("/token", {"resource_token": plain})).status_code == 200


async def test_a_policy_sees_the_document(bare: World) -> None:
    seen: list[Any] = []

    def policy(request: Any) -> Any:
        from aauth_agents.servers.person_server import Decision

        if request.kind != "auth_token":
            return Decision.approve()
        seen.append(request.r3)
        if request.r3["parameters"].get("to", "").endswith("@example.com"):
            return Decision.approve()
        return Decision.deny("only notes to example.com")

    bare.start(policy=policy, default_person="alice")
    assert bare.ps is not None
    bare.ps.accounts.create_account("alice", "x" * 12)
    agent = bare.agent()
    assert (
        await agent.post("/token", {"resource_token": await r3_token(bare, agent)})
    ).status_code == 200
    outside = {**PROPOSAL, "parameters": {"to": "eve@evil.example"}}
    refused = await agent.post("/token", {"resource_token": await r3_token(bare, agent, outside)})
    assert refused.status_code == 403 and problem(refused) == "denied"
    assert [r["parameters"]["to"] for r in seen] == ["bob@example.com", "eve@evil.example"]


@pytest.mark.parametrize(
    "case",
    ["changed", "large", "missing", "forbidden", "slow", "malformed", "not-json", "two-operations"],
)
async def test_a_document_the_ps_cannot_trust_refuses_the_resource_token(
    auto: World, case: str
) -> None:
    assert auto.ps is not None
    auto.ps.config.r3_timeout = 0.3
    agent = auto.agent()
    document: Any = PROPOSAL
    if case == "large":
        document = {**PROPOSAL, "padding": "x" * MAX_DOCUMENT_BYTES}
    elif case == "malformed":
        document = {**PROPOSAL, "display": {"detail": "no summary"}}
    elif case == "not-json":
        document = b"<html>not an R3 document</html>"
    elif case == "two-operations":
        document = {**PROPOSAL, "operations": [{"tool": "a"}, {"tool": "b"}]}
    rt = await r3_token(auto, agent, document)
    if case == "changed":  # the resource serves other bytes than it hashed
        auto.resource.publish({**PROPOSAL, "parameters": {"to": "eve@evil.example"}})
    elif case == "missing":
        auto.resource.documents.clear()
    elif case == "forbidden":
        auto.resource.r3_status = 403
    elif case == "slow":
        auto.resource.r3_delay = 2.0
    before = await auto.ps.run(auto.ps.pending.open_for_owner, "alice", auto.clock(), 100)
    response = await agent.post("/token", {"resource_token": rt})
    assert response.status_code == 400, response.text
    assert problem(response) == "invalid_resource_token"
    after = await auto.ps.run(auto.ps.pending.open_for_owner, "alice", auto.clock(), 100)
    assert after == before
    assert not [e for e in auto.events if e.name == "issued_auth_token"]
    if case == "changed":
        assert [e.detail for e in auto.events if e.name == "tampering"] == [
            {"mismatch": ["r3_s256"]}
        ]


async def test_an_r3_uri_off_the_resources_origin_is_refused_unfetched(auto: World) -> None:
    agent = auto.agent()
    rt = await r3_token(auto, agent)
    forged = auto.resource.reissue(rt, r3_uri="https://docs.example/aauth/r3/p1")
    response = await agent.post("/token", {"resource_token": forged})
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"
    assert auto.resource.fetches == [] and auto.docs.fetches == []
    partial = auto.resource.reissue(rt, drop=("r3_s256",))
    response = await agent.post("/token", {"resource_token": partial})
    assert response.status_code == 400 and problem(response) == "invalid_resource_token"
