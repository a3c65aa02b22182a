"""Per-call tools at the resource (R3 §Per-Call Proposals), against the memory and the SQLite
stores: each call is held (202) with a proposal built from its arguments, served at
``r3_uri`` to the person server and to nobody else (R3 §R3 Document Access Restriction); an
auth token pinning that proposal runs the held call once, and presenting it again answers
from the retained result. Arguments changed between challenge and completion, a per-call
token replayed for a second call, a token for another tool's proposal: each refused
(``403 invalid_auth_token``), nothing executed, nothing written.

The person server is played by the test: it signs its ``r3_uri`` fetch with its own key
(``Signature-Key: sig=jwks_uri``) and mints the per-call auth token as the in-repo PS does
(``tests/integrations/test_mcp_per_call.py`` runs the real one)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.resource import AP, AS, PS, RESOURCE, World

from aauth_agents.httpsig import HttpRequest, SignatureKey, sign_request
from aauth_agents.keys import PrivateKey
from aauth_agents.protocol import parse_requirement
from aauth_agents.protocol.r3 import MCP_VOCABULARY, parse_r3_document, r3_s256, s256_of
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    Display,
    ProposedCall,
    RoutePolicy,
    mcp_tool_rules,
)
from aauth_agents.resource.percall import DIGEST_OVER
from aauth_agents.stores import COMPLETED, PENDING, Stores
from aauth_agents.tokens import DWK_ACCESS, DWK_AGENT, DWK_PERSON, peek

OTHER_PS = "https://other-ps.example"


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    w = World()
    if request.param == "sqlite":
        w.stores = Stores.sqlite(tmp_path / "resource.sqlite3", clock=w.clock)
    w.other_ps_key = PrivateKey.generate(kid="other-1")  # type: ignore[attr-defined]
    w.keys.add(OTHER_PS, DWK_PERSON, w.other_ps_key.public_key)  # type: ignore[attr-defined]
    yield w


def _note(call: ProposedCall) -> Display:
    return Display(
        summary=f"Send a note to {call.arguments.get('to')}",
        irreversible="A sent note cannot be unsent",
    )


class Tools:
    """A JSON-RPC endpoint at ``/mcp`` (the shape of MCP's ``tools/call``) counting what ran,
    behind the middleware with a rule per tool, and ``/data`` needing ``data.write``."""

    def __init__(self, world: World, **config: Any) -> None:
        self.world = world
        self.ran: list[tuple[str, dict[str, Any]]] = []
        self.resource = world.resource(**config)
        rules = mcp_tool_rules(
            {
                "send_note": AccessRule.per_call("data.write", display=_note),
                "delete": AccessRule.per_call("data.delete"),
                "read": AccessRule.auth("data.read"),
            },
            default=AccessRule.agent(),
        )

        async def tools(request: Request) -> JSONResponse:
            message = json.loads(await request.body())
            name, args = message["params"]["name"], message["params"].get("arguments", {})
            self.ran.append((name, args))
            return JSONResponse(
                {
                    "jsonrpc": "2.0",
                    "id": message.get("id"),
                    "result": {"ran": name, "arguments": args, "count": len(self.ran)},
                }
            )

        async def data(request: Request) -> JSONResponse:
            self.ran.append(("data", {}))
            return JSONResponse({"ok": True})

        app = Starlette(
            routes=[Route("/mcp", tools, methods=["POST"]), Route("/data", data, methods=["POST"])]
        )
        self.app = AAuthMiddleware(
            app,
            resource=self.resource,
            policy=RoutePolicy(
                [("*", "/mcp", rules), ("*", "/data", AccessRule.auth("data.write"))],
                default=AccessRule.agent(),
            ),
        )

    async def call(
        self, token: str, tool: str, arguments: dict[str, Any], *, key: PrivateKey | None = None
    ) -> httpx.Response:
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        ).encode()
        async with self.world.client(self.app, self.world.signer(token, key)) as client:
            return await client.post(
                "/mcp", content=body, headers={"content-type": "application/json"}
            )

    async def get(self, token: str, url: str) -> httpx.Response:
        async with self.world.client(self.app, self.world.signer(token)) as client:
            return await client.get(urlsplit(url).path)

    async def read_as(self, url: str, key: PrivateKey, server: str, dwk: str) -> httpx.Response:
        """GET ``url`` signed by ``server`` with ``key`` (``scheme=jwks_uri``)."""
        headers = sign_request(
            HttpRequest("GET", url),
            key=key,
            clock=self.world.clock,
            signature_key=SignatureKey.from_jwks_uri(id=server, dwk=dwk, kid=str(key.kid)),
        )
        async with self.world.client(self.app) as client:
            return await client.get(urlsplit(url).path, headers=headers)

    async def held(self, tool: str = "send_note", **arguments: Any) -> Held:
        """A call made with the person token: held, with its proposal read by the PS."""
        response = await self.call(self.world.person_token(), tool, arguments)
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "pending"}
        requirement = parse_requirement(response.headers["aauth-requirement"])
        assert requirement.value == "auth-token" and requirement.resource_token is not None
        claims = peek(requirement.resource_token)[1]
        fetched = await self.read_as(claims["r3_uri"], self.world.ps_key, PS, DWK_PERSON)
        assert fetched.status_code == 200, fetched.text
        assert r3_s256(fetched.content) == claims["r3_s256"]  # the bytes as hashed
        return Held(self, response.headers["location"], claims, fetched.content)


class Held:
    def __init__(
        self, tools: Tools, location: str, claims: dict[str, Any], document: bytes
    ) -> None:
        self.tools, self.location, self.claims, self.document = tools, location, claims, document

    @property
    def id(self) -> str:
        return self.location.rsplit("/", 1)[1]

    def token(self, **changes: Any) -> str:
        """The per-call auth token the PS issues on approval (R3 §Per-Call Proposals, Flow
        step 2): ``r3_uri`` / ``r3_s256`` echoed, the operation in ``r3_granted``."""
        tool = parse_r3_document(self.document).operations[0]["tool"]
        args: dict[str, Any] = {
            "scope": self.claims["scope"],
            "r3_uri": self.claims["r3_uri"],
            "r3_s256": self.claims["r3_s256"],
            "r3_granted": {"vocabulary": MCP_VOCABULARY, "operations": [{"tool": tool}]},
        }
        args.update(changes)
        return self.tools.world.auth_token(**args)

    async def poll(self, token: str) -> httpx.Response:
        return await self.tools.get(token, self.location)

    def state(self) -> str:
        stores = self.tools.world.stores
        assert stores is not None
        record = stores.pending.get(self.id)
        assert record is not None
        return record.state


async def test_a_per_call_tool_is_held_with_a_proposal_of_its_arguments(world: World) -> None:
    tools = Tools(world)
    held = await tools.held(to="bob", text="hello")
    assert tools.ran == []
    # the resource token references the proposal (R3 §Resource Token Extensions)
    assert held.claims["r3_uri"] == f"{RESOURCE}/aauth/r3/{held.id}"
    assert held.claims["scope"] == "data.write" and held.claims["aud"] == PS
    proposal = parse_r3_document(held.document)
    assert proposal.per_call and proposal.vocabulary == MCP_VOCABULARY
    assert proposal.operations == ({"tool": "send_note"},)
    assert proposal.parameters == {"to": "bob", "text": "hello"}
    assert proposal.display is not None
    assert proposal.display.summary == "Send a note to bob"
    assert proposal.display.irreversible == "A sent note cannot be unsent"
    assert "`bob`" in (proposal.display.detail or "")  # the arguments, always
    # served again: the same bytes (R3 §Content Addressing)
    again = await tools.read_as(held.claims["r3_uri"], world.ps_key, PS, DWK_PERSON)
    assert again.content == held.document
    assert again.headers["content-type"] == "application/json"
    assert again.headers["cache-control"] == "no-store"
    # an agent token alone is asked for a person token first
    first = await tools.call(world.agent_token(), "send_note", {"to": "bob"})
    assert first.status_code == 401
    assert parse_requirement(first.headers["aauth-requirement"]).value == "person-token"


async def test_the_held_call_runs_once_even_when_completion_is_presented_twice(
    world: World,
) -> None:
    tools = Tools(world)
    held = await tools.held(to="bob", text="hello")
    token = held.token()
    # polling with the person token meanwhile: still held
    assert (await held.poll(world.person_token())).status_code == 202
    done = await held.poll(token)
    assert done.status_code == 200, done.text
    assert done.json()["result"] == {
        "ran": "send_note",
        "arguments": {"to": "bob", "text": "hello"},
        "count": 1,
    }
    assert held.state() == COMPLETED
    # R3 §Per-Call Proposals, Single use: the same token again -> the retained result
    repeat = await held.poll(token)
    assert repeat.status_code == 200 and repeat.content == done.content
    # ... and so is the same call re-sent with it (the draft's 401 completion)
    resent = await tools.call(token, "send_note", {"to": "bob", "text": "hello"})
    assert resent.status_code == 200 and resent.content == done.content
    assert len(tools.ran) == 1
    # another token for the same proposal finds it spent
    other = held.token()
    assert (await held.poll(other)).status_code == 410
    refused = await tools.call(other, "send_note", {"to": "bob", "text": "hello"})
    assert refused.status_code == 403 and refused.json()["error"] == "invalid_auth_token"
    assert len(tools.ran) == 1


async def test_concurrent_completions_execute_once(world: World) -> None:
    tools = Tools(world)
    held = await tools.held(to="bob")
    token = held.token()
    answers = await asyncio.gather(
        *(held.poll(token) for _ in range(5)), tools.call(token, "send_note", {"to": "bob"})
    )
    assert len(tools.ran) == 1
    assert {a.status_code for a in answers} <= {200, 202}
    final = await held.poll(token)
    assert final.status_code == 200 and final.json()["result"]["count"] == 1


async def test_the_call_re_sent_unchanged_completes_its_held_twin(world: World) -> None:
    """The draft's 401 completion: the agent re-sends the call with the per-call token;
    the parameters are compared (inline as JSON values, long ones by digest) and the
    held record is consumed, so the pending URL then answers from the same result."""
    tools = Tools(world)
    text = "x" * (DIGEST_OVER + 1)
    held = await tools.held(to={"name": "bob", "ids": [1, 2]}, text=text)
    proposal = parse_r3_document(held.document)
    assert proposal.parameters is not None
    assert proposal.parameters["text"]["s256"] == s256_of(text)
    token = held.token()
    done = await tools.call(
        token, "send_note", {"text": text, "to": {"ids": [1.0, 2], "name": "bob"}}
    )
    assert done.status_code == 200, done.text
    assert held.state() == COMPLETED
    polled = await held.poll(token)
    assert polled.status_code == 200 and polled.content == done.content
    assert len(tools.ran) == 1


async def test_arguments_changed_between_challenge_and_completion(world: World) -> None:
    tools = Tools(world)
    text = "y" * (DIGEST_OVER + 10)
    held = await tools.held(to="bob", text=text)
    token = held.token()
    before = world.snapshot()
    for changed in (
        {"to": "mallory", "text": text},
        {"to": "bob", "text": text + "!"},
        {"to": "bob", "text": text, "cc": "mallory"},
        {"to": "bob"},
        {"to": ["bob"], "text": text},
    ):
        refused = await tools.call(token, "send_note", changed)
        assert refused.status_code == 403, (changed, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["error"] == "invalid_auth_token"
        assert "signature-error" not in refused.headers
    assert tools.ran == [] and world.snapshot() == before and held.state() == PENDING
    reasons = [e.reason for e in world.kinds("denied")]
    assert reasons.count("per_call_arguments_changed") == 5
    # the approved call still runs, with the approved arguments
    done = await held.poll(token)
    assert done.json()["result"]["arguments"] == {"to": "bob", "text": text}


async def test_a_per_call_token_replayed_for_a_second_call(world: World) -> None:
    tools = Tools(world)
    first = await tools.held(to="bob")
    token = first.token()
    assert (await first.poll(token)).status_code == 200
    second = await tools.held(to="carol")
    before = world.snapshot()
    # at the second call's pending URL: not its proposal
    at_pending = await second.poll(token)
    # with a new call: the grant was consumed by the first
    new_call = await tools.call(token, "send_note", {"to": "carol"})
    for refused in (at_pending, new_call):
        assert refused.status_code == 403 and refused.json()["error"] == "invalid_auth_token"
    assert world.snapshot() == before and second.state() == PENDING
    assert tools.ran == [("send_note", {"to": "bob"})]
    # its own token still completes it
    assert (await second.poll(second.token())).json()["result"]["arguments"] == {"to": "carol"}
    # before the first call ran, its token is no key to another held call either
    third, fourth = await tools.held(to="dave"), await tools.held(to="erin")
    assert (await fourth.poll(third.token())).status_code == 403
    assert fourth.state() == PENDING and third.state() == PENDING


async def test_a_proposal_for_another_tool(world: World) -> None:
    tools = Tools(world)
    note = await tools.held(to="bob")
    delete = await tools.held("delete", name="report.txt")
    before = world.snapshot()
    refusals = [
        # the note's token, with a call of the other per-call tool
        await tools.call(note.token(), "delete", {"name": "report.txt"}),
        # ... or at that tool's pending URL
        await delete.poll(note.token()),
        # a token pinning the note's proposal but granting another tool
        await note.poll(
            note.token(
                r3_granted={"vocabulary": MCP_VOCABULARY, "operations": [{"tool": "delete"}]}
            )
        ),
        # a token with the note's r3_uri and another document's hash
        await note.poll(note.token(r3_s256=delete.claims["r3_s256"])),
        # a grant in another vocabulary
        await note.poll(
            note.token(
                r3_granted={
                    "vocabulary": "urn:aauth:vocabulary:openapi",
                    "operations": [{"tool": "send_note"}],
                }
            )
        ),
    ]
    for refused in refusals:
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "invalid_auth_token"
    assert tools.ran == [] and world.snapshot() == before
    assert note.state() == PENDING and delete.state() == PENDING
    # a plain auth token (no R3 pin) does not complete a per-call record either
    assert (await note.poll(world.auth_token(scope="data.write"))).status_code == 403
    assert tools.ran == []


async def test_a_per_call_token_is_no_standing_grant(world: World) -> None:
    """Its scopes authorize nothing beyond the call it approved: a route needing
    ``data.write`` challenges it (step-up) instead of serving it."""
    tools = Tools(world)
    held = await tools.held(to="bob")
    token = held.token()
    assert (await held.poll(token)).status_code == 200
    async with world.client(tools.app, world.signer(token)) as client:
        data = await client.post("/data", json={})
    assert data.status_code == 401
    assert parse_requirement(data.headers["aauth-requirement"]).value == "auth-token"
    assert tools.ran == [("send_note", {"to": "bob"})]
    # a regular auth token is served, and a per-call tool still asks for its own approval
    plain = world.auth_token(scope="data.write data.delete")
    async with world.client(tools.app, world.signer(plain)) as client:
        assert (await client.post("/data", json={})).status_code == 200
    asked = await tools.call(plain, "delete", {"name": "x"})
    assert asked.status_code == 202
    assert peek(parse_requirement(asked.headers["aauth-requirement"]).resource_token or "")[1][
        "r3_uri"
    ].startswith(RESOURCE + "/aauth/r3/")


async def test_only_the_named_person_server_reads_a_proposal(world: World) -> None:
    """R3 §R3 Document Access Restriction: the PS in the resource token's ``ps`` (and the AS
    in its ``aud``); an agent -- with any of its tokens -- or another PS is refused."""
    tools = Tools(world)
    held = await tools.held(to="bob")
    uri = held.claims["r3_uri"]
    async with world.client(tools.app) as client:
        unsigned = await client.get(urlsplit(uri).path)
        posted = await client.post(urlsplit(uri).path)
    assert unsigned.status_code == 401 and posted.status_code == 405
    for token in (world.agent_token(), world.person_token(), held.token()):
        agent = await tools.get(token, uri)
        assert agent.status_code == 401, agent.text
        assert "signature-error" in agent.headers
        assert held.document not in agent.content
    # the agent's key, claiming to be the PS; the agent's provider, signing as itself
    forged = await tools.read_as(uri, world.agent_key, PS, DWK_PERSON)
    assert forged.status_code == 401
    provider = await tools.read_as(uri, world.ap_key, AP, DWK_AGENT)
    assert provider.status_code == 401
    other = await tools.read_as(
        uri,
        world.other_ps_key,
        OTHER_PS,  # type: ignore[attr-defined]
        DWK_PERSON,
    )
    assert other.status_code == 403 and other.json()["error"] == "access_denied"
    # the PS key under the access-server role is not the PS the token names
    as_ps = await tools.read_as(uri, world.ps_key, PS, DWK_ACCESS)
    assert as_ps.status_code == 401  # no such key: PS publishes no aauth-access.json here
    unknown = await tools.read_as(RESOURCE + "/aauth/r3/nope", world.ps_key, PS, DWK_PERSON)
    assert unknown.status_code == 404
    assert tools.ran == []
    assert [e.reason for e in world.kinds("denied")].count("r3_not_entitled") == 1


async def test_four_party_the_access_server_reads_it_too(world: World) -> None:
    tools = Tools(world, access_server=AS)
    held = await tools.held(to="bob")
    assert held.claims["aud"] == AS and held.claims["ps"] == PS
    by_as = await tools.read_as(held.claims["r3_uri"], world.as_key, AS, DWK_ACCESS)
    assert by_as.status_code == 200 and by_as.content == held.document


async def test_bad_per_call_requests_are_refused_and_hold_nothing(world: World) -> None:
    tools = Tools(world)
    person = world.person_token()
    batch = json.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "send_note", "arguments": {}},
            }
        ]
        * 2
    ).encode()
    async with world.client(tools.app, world.signer(person)) as client:
        batched = await client.post(
            "/mcp", content=batch, headers={"content-type": "application/json"}
        )
    assert batched.status_code == 400 and batched.json()["error"] == "invalid_request"
    huge = await tools.call(person, "send_note", {f"a{i}": "z" * 400 for i in range(200)})
    assert huge.status_code == 400
    # nothing is held (the person token is remembered, for later challenges)
    after = json.loads(world.snapshot())
    assert tools.ran == [] and not after.get("pending") and not after.get("aauth_pending")


def test_per_call_rule_configuration() -> None:
    rule = AccessRule.per_call("data.write", display=_note)
    assert rule.access_mode == "per-call" and rule.scopes == ("data.write",)
    combined = AccessRule.auth("data.read").combine(rule)
    assert combined.level == "per-call" and combined.display is _note
    assert set(combined.scopes) == {"data.read", "data.write"}
    from aauth_agents.protocol.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        AccessRule("per-call", approval=True)
    with pytest.raises(ConfigurationError):
        AccessRule("auth", ("data.read",), display=_note)
    world = World()
    with pytest.raises(ConfigurationError):  # scopes must be described
        AAuthResource(world.config()).check_rules([AccessRule.per_call("nope")])
