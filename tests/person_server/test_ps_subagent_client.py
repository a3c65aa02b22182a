"""Sub-agents end to end (§Sub-Agents, §Parent-Mediated Authorization): the agent client's
sub-agent (``AAuth(sub, parent=parent)``) calls a resource protected by
:class:`aauth_agents.resource.AAuthMiddleware`; its parent obtains the person token and the
three-party auth token at this PS with ``subagent_token``. The agent tokens come from the
agent provider (parent and sub-agent). Every claim of every token is checked, and what each
party received; then the single-level rule, a sub-agent calling the PS itself, and the
person revoking the parent's grant (and the provider revoking the parent's token)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.ps import AP, HOSTS, NOW, PASSWORD, PS, Agent, World, problem

from aauth_agents.agent import AAuth, AgentIdentity, DeniedError
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig import (
    HttpRequest,
    KeyResolution,
    SignatureKey,
    SignatureVerifier,
    parse_signature_key,
    sign_request,
)
from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol.errors import ConfigurationError, InvalidJWTError
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    Caller,
    ResourceConfig,
    RoutePolicy,
    current_caller,
)
from aauth_agents.servers.person_server import InteractionView, PersonServer, create_person_server
from aauth_agents.stores import Stores
from aauth_agents.tokens import DWK_AGENT, mint_agent_token, peek
from aauth_agents.transport import AsyncMappedTransport

API = "https://api.example"
PARENT_ID = "aauth:planner@agents.example"
SUB_ID = "aauth:planner+search1@agents.example"
DEEPER_ID = "aauth:planner+deep@agents.example"  # (one '+' only: the identifier grammar)
LIFETIME = 1800  # agent tokens: shorter than a person or auth token's hour, so exp is bounded
EGRESS = EgressPolicy.for_mapped_hosts({**HOSTS, "api.example": "127.0.0.1"}, allow_loopback=True)


@dataclass
class Site:
    """The PS, the agent provider and the API, wired in-process; the requests the agents'
    client sent and the callers the API served."""

    world: World
    ps: PersonServer
    api: Any
    mapping: dict[str, Any]
    sent: list[httpx.Request] = field(default_factory=list)
    callers: list[Caller] = field(default_factory=list)
    seen: list[InteractionView] = field(default_factory=list)
    decide: str = "approve"

    async def person_at_the_link(self, url: str, code: str) -> None:
        """The person opens the link, signs in, reads the request and decides."""
        view = await self.ps.interactions.lookup(url.rsplit("/", 1)[1], code)
        self.seen.append(view)
        if self.decide == "deny":
            await self.ps.interactions.deny(view.id, "not any more")
            return
        account = await self.ps.accounts.aauthenticate("alice", PASSWORD)
        assert account is not None
        await self.ps.interactions.approve(view.id, account.username)

    def auth(self, identity: AgentIdentity, **options: Any) -> AAuth:
        clock = self.world.clock
        options.setdefault("on_interaction", self.person_at_the_link)
        return AAuth(
            identity,
            clock=clock,
            prefer_wait=None,
            sleep=lambda seconds: clock.advance(max(float(seconds), 1.0)),
            **options,
        )

    def client(self) -> httpx.AsyncClient:
        async def record(request: httpx.Request) -> None:
            # a copy: an auth flow re-signs the same request object for its retries
            self.sent.append(
                httpx.Request(
                    request.method,
                    request.url,
                    headers=request.headers.multi_items(),
                    content=request.content,
                )
            )

        return httpx.AsyncClient(
            transport=AsyncMappedTransport(self.mapping, strict=True),
            event_hooks={"request": [record]},
        )

    def to(self, origin: str) -> list[httpx.Request]:
        return [r for r in self.sent if str(r.url).startswith(origin)]


@pytest.fixture
async def site(bare: World) -> AsyncIterator[Site]:
    clock = bare.clock
    bare.ap.lifetime = LIFETIME
    ap_app = bare.ap.app()
    holder: dict[str, Any] = {}

    async def ps_asgi(scope: Any, receive: Any, send: Any) -> None:  # late-bound PS app
        await holder["ps"](scope, receive, send)

    resource = AAuthResource(
        ResourceConfig(
            identifier=API,
            signing_key=PrivateKey.generate(kid="api-1"),
            clock=clock,
            issuer_keys=AsyncDiscovery(
                transport=AsyncMappedTransport({PS: ps_asgi, AP: ap_app}, strict=True),
                egress=EGRESS,
                clock=clock,
            ),
            scope_descriptions={"data.read": "Read your data"},
            name="The API",
            stores=Stores.memory(clock=clock),
        )
    )
    callers: list[Caller] = []

    async def served(request: Request) -> JSONResponse:
        caller = current_caller()
        assert caller is not None
        callers.append(caller)
        return JSONResponse({"kind": caller.kind, "scopes": list(caller.scopes)})

    api = Starlette(routes=[Route("/profile", served), Route("/data", served)])
    api.add_middleware(
        AAuthMiddleware,
        resource=resource,
        policy=RoutePolicy(
            {"/profile": AccessRule.person(), "/data": AccessRule.auth("data.read")}
        ),
    )
    ps_app = create_person_server(
        bare.config(
            discovery=AsyncDiscovery(
                transport=AsyncMappedTransport({AP: ap_app, API: api}, strict=True),
                egress=EGRESS,
                clock=clock,
            ),
            transport=AsyncMappedTransport({API: api}, strict=True),
        )
    )
    holder["ps"] = ps_app
    ps = ps_app.state.person_server
    bare.ps = ps
    bare.attach(ps_app)
    ps.accounts.create_account("alice", PASSWORD)
    yield Site(bare, ps, api, {PS: ps_app, API: api, AP: ap_app}, callers=callers)


def identities(site: Site) -> tuple[AgentIdentity, AgentIdentity]:
    """The sub-agent's token is minted first, the parent's 100 s later: the sub-agent's
    expires first, and so bounds what is issued for it."""
    ap, clock = site.world.ap, site.world.clock
    sub = ap.identity(PrivateKey.generate(), SUB_ID, parent_agent=PARENT_ID)
    clock.advance(100)
    parent = ap.identity(PrivateKey.generate(), PARENT_ID)
    return parent, sub


def check_agent_token(
    token: str, key: PublicKey, agent_id: str, *, iat: int, parent_agent: str | None = None
) -> dict[str, Any]:
    header, claims = peek(token)
    assert header == {"alg": "Ed25519", "typ": "aa-agent+jwt", "kid": "ap-1"}
    expected = {"iss", "dwk", "sub", "cnf", "ps", "jti", "iat", "exp"}
    expected |= {"parent_agent"} if parent_agent else set()
    assert set(claims) == expected, claims
    assert claims["iss"] == AP and claims["dwk"] == "aauth-agent.json"
    assert claims["sub"] == agent_id and claims["ps"] == PS
    assert claims["cnf"] == {"jwk": key.to_jwk(kid=False)}
    assert claims["iat"] == iat and claims["exp"] == iat + LIFETIME
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims.get("parent_agent") == parent_agent
    return claims


def check_resource_token(
    token: str, key: PublicKey, *, person: dict[str, Any], now: int
) -> dict[str, Any]:
    header, claims = peek(token)
    assert header == {"alg": "Ed25519", "typ": "aa-resource+jwt", "kid": "api-1"}
    assert set(claims) == {
        "iss",
        "dwk",
        "aud",
        "jti",
        "agent_jkt",
        "ps",
        "sub",
        "presented_jti",
        "person_token_jti",
        "scope",
        "iat",
        "exp",
    }, claims
    assert claims["iss"] == API and claims["dwk"] == "aauth-resource.json"
    assert claims["aud"] == PS and claims["ps"] == PS
    assert claims["agent_jkt"] == key.thumbprint()  # the sub-agent's key, not the parent's
    assert claims["sub"] == person["sub"] and claims["presented_jti"] == person["jti"]
    assert claims["person_token_jti"] == person["jti"]  # the pre-11 name, still sent
    assert claims["scope"] == "data.read"
    assert claims["iat"] == now and 0 < claims["exp"] - claims["iat"] <= 300
    return claims


async def check_signed_by(
    request: httpx.Request, key: PublicKey, agent_token: str, clock: Any
) -> tuple[str, ...]:
    """Verify ``request``'s signature ourselves: by ``key``, ``agent_token`` in
    Signature-Key; returns the covered components."""

    async def resolve(signature_key: SignatureKey) -> KeyResolution:
        assert signature_key.scheme == "jwt" and signature_key.jwt == agent_token
        return KeyResolution(jwk=key.to_jwk())

    verified = await SignatureVerifier(clock=clock, require_body_digest=True).averify(
        HttpRequest(
            request.method, str(request.url), request.headers.multi_items(), request.content
        ),
        resolve,
    )
    return verified.components


async def test_sub_agent_authorized_through_its_parent(site: Site) -> None:
    world, clock = site.world, site.world.clock
    parent_identity, sub_identity = identities(site)
    parent_key, sub_key = parent_identity.key.public_key, sub_identity.key.public_key
    parent = site.auth(parent_identity, justification="Plan the trip")
    sub = site.auth(sub_identity, parent=parent)
    check_agent_token(parent_identity.agent_token, parent_key, PARENT_ID, iat=NOW + 100)
    check_agent_token(sub_identity.agent_token, sub_key, SUB_ID, iat=NOW, parent_agent=PARENT_ID)

    async with site.client() as client:
        # The person consents to the parent: who may act at the API as them, then the scope.
        assert (await client.get(f"{API}/data", auth=parent)).status_code == 200
        assert [(v.kind, v.agent_id, v.subagent) for v in site.seen] == [
            ("person_token", PARENT_ID, None),
            ("auth_token", PARENT_ID, None),
        ]
        parent_sent = len(site.sent)
        parent_person = site.callers[-1]
        assert parent_person.thumbprint == parent_key.thumbprint()

        # The sub-agent works under that consent: nobody is asked again.
        clock.advance(10)
        now = int(clock())
        profile = await client.get(f"{API}/profile", auth=sub)
        assert profile.status_code == 200 and profile.json()["kind"] == "person"
        data = await client.get(f"{API}/data", auth=sub)
        assert data.status_code == 200, data.text
        assert data.json() == {"kind": "auth", "scopes": ["data.read"]}
        assert len(site.seen) == 2

    sent = site.sent[parent_sent:]
    to_ps = [r for r in sent if str(r.url).startswith(PS)]
    # Only token requests went to the PS (its metadata and JWKS are the parent's, cached),
    # each signed by the parent, its agent token in Signature-Key, the body covered.
    assert [(r.method, str(r.url)) for r in to_ps] == [
        ("POST", f"{PS}/person"),
        ("POST", f"{PS}/token"),
    ]
    for request in to_ps:
        covered = await check_signed_by(request, parent_key, parent_identity.agent_token, clock)
        assert {"content-type", "content-digest", "signature-key"} <= set(covered)
    person_body = json.loads(to_ps[0].content)
    token_body = json.loads(to_ps[1].content)
    assert person_body == {
        "resource": API,
        "subagent_token": sub_identity.agent_token,
        "justification": "Plan the trip",
        "capabilities": ["interaction", "clarification"],
    }
    assert set(token_body) == {"resource_token", "subagent_token", "justification", "capabilities"}
    assert token_body["subagent_token"] == sub_identity.agent_token

    # Every request to the API was the sub-agent's, signed with its key (its metadata and
    # JWKS, fetched once into the sub-agent's caches, are not signed).
    to_api = [r for r in sent if str(r.url).startswith(API)]
    assert [str(r.url) for r in to_api if "signature" not in r.headers] == [
        f"{API}/.well-known/aauth-resource.json",
        f"{API}/.well-known/jwks.json",
    ]
    to_api = [r for r in to_api if "signature" in r.headers]
    presented = []
    for request in to_api:
        jwt = parse_signature_key(request.headers["signature-key"])[1].jwt
        assert jwt is not None
        await check_signed_by(request, sub_key, jwt, clock)
        presented.append((request.url.path, peek(jwt)[0]["typ"]))
    assert presented == [
        ("/profile", "aa-agent+jwt"),
        ("/profile", "aa-person+jwt"),
        ("/data", "aa-person+jwt"),
        ("/data", "aa-auth+jwt"),
    ]

    # The person token: for the API, bound to the sub-agent's key, at most until the
    # sub-agent's token expires; the same person (directed sub) as the parent's.
    person_token = sub.state.person_token(API, None, clock(), 0)
    assert person_token is not None
    person = await world.check_person_token(
        person_token.raw,
        sub_key,
        resource=API,
        not_after=min(parent_identity.expires_at, sub_identity.expires_at),
    )
    assert person["exp"] == NOW + LIFETIME  # the sub-agent's token bounds it
    assert person["iat"] == now
    assert parent_person.person == (PS, person["sub"])

    # The resource token the sub-agent got and its parent sent on.
    rt = check_resource_token(token_body["resource_token"], sub_key, person=person, now=now)

    # The auth token: issued by the PS for the API, the person's sub, the scope; bound to
    # the sub-agent's key; no parent_agent or agent identifier (§Sub-Agents).
    auth_token = sub.state.current_auth_token(API, clock(), 0)
    assert auth_token is not None
    claims = await world.check_auth_token(
        auth_token.raw,
        sub_key,
        resource=API,
        sub=person["sub"],
        scope="data.read",
        not_after=min(parent_identity.expires_at, sub_identity.expires_at),
    )
    assert claims["exp"] == NOW + LIFETIME and claims["iat"] == now
    assert claims["jti"] != person["jti"] and claims["jti"] != rt["jti"]
    # nothing the resource sees names the parent or marks a sub-agent
    for token in (person_token.raw, auth_token.raw, token_body["resource_token"]):
        text = json.dumps(peek(token))
        assert "parent_agent" not in text and PARENT_ID not in text and SUB_ID not in text

    # What the API served: the sub-agent's key, the person, the scope, no agent named.
    person_caller, auth_caller = site.callers[-2:]
    assert (person_caller.kind, auth_caller.kind) == ("person", "auth")
    for caller in (person_caller, auth_caller):
        assert caller.thumbprint == sub_key.thumbprint()
        assert caller.agent is None and caller.parent_agent is None
        assert caller.person == (PS, person["sub"])
    assert auth_caller.scopes == ("data.read",) and auth_caller.jti == claims["jti"]
    assert person_caller.jti == person["jti"]

    # The PS recorded the issuance for the sub-agent, requested by the parent.
    issued = [e for e in world.events if e.name.startswith("issued")]
    assert [(e.agent, e.jti) for e in issued[-2:]] == [
        (SUB_ID, person["jti"]),
        (SUB_ID, claims["jti"]),
    ]

    # The parent's own tokens are its own: bound to its key, bounded by its agent token.
    parent_person_token = parent.state.person_token(API, None, clock(), 0)
    parent_auth_token = parent.state.current_auth_token(API, clock(), 0)
    assert parent_person_token is not None and parent_auth_token is not None
    for held in (parent_person_token, parent_auth_token):
        assert held.raw not in (person_token.raw, auth_token.raw)
        assert held.claims["cnf"] == {"jwk": parent_key.to_jwk(kid=False)}
        assert held.claims["sub"] == person["sub"]  # the same person at the API
        assert held.claims["iat"] < now and held.claims["exp"] == NOW + 100 + LIFETIME


async def test_consent_surfaces_for_the_parent(site: Site) -> None:
    parent_identity, sub_identity = identities(site)
    asked_sub: list[str] = []
    parent = site.auth(parent_identity)
    sub = site.auth(
        sub_identity, parent=parent, on_interaction=lambda url, code: asked_sub.append(code)
    )
    async with site.client() as client:
        response = await client.get(f"{API}/data", auth=sub)
        assert response.status_code == 200, response.text
    # The person was asked, through the parent, about the parent on behalf of the sub-agent.
    assert [(v.kind, v.agent_id, v.subagent) for v in site.seen] == [
        ("person_token", PARENT_ID, SUB_ID),
        ("auth_token", PARENT_ID, SUB_ID),
    ]
    assert asked_sub == []
    polls = [r for r in site.to(PS) if "/pending/" in str(r.url)]
    assert polls
    for poll in polls:
        await check_signed_by(
            poll, parent_identity.key.public_key, parent_identity.agent_token, site.world.clock
        )


async def test_single_level_depth(site: Site) -> None:
    world = site.world
    parent_identity, sub_identity = identities(site)
    parent = site.auth(parent_identity)
    sub = site.auth(sub_identity, parent=parent)
    deeper_key = PrivateKey.generate()
    # The provider issues no sub-agent of a sub-agent...
    with pytest.raises(ConfigurationError, match="itself a sub-agent"):
        world.ap.mint(deeper_key, DEEPER_ID, parent_agent=SUB_ID)
    # ...so mint one with its key, to see that neither the client nor the PS accept it.
    deeper_token = mint_agent_token(
        world.ap.key,
        iss=AP,
        sub=DEEPER_ID,
        cnf=deeper_key.public_key,
        ps=PS,
        parent_agent=SUB_ID,
        clock=world.clock,
    )
    deeper = AgentIdentity(deeper_key, deeper_token, clock=world.clock)
    with pytest.raises(ConfigurationError, match="Single-Level"):
        site.auth(deeper, parent=sub)
    # The PS refuses the sub-agent signing for its own "sub-agent".
    as_parent = Agent(
        world, sub_identity.key, SUB_ID, sub_identity.agent_token, parent_agent=PARENT_ID
    )
    for path, body in (
        ("/person", {"resource": API, "subagent_token": deeper_token}),
        ("/token", {"resource_token": "x.y.z", "subagent_token": deeper_token}),
    ):
        refused = await as_parent.post(path, body)
        assert refused.status_code == 400 and problem(refused) == "invalid_agent_token"
    assert not [e for e in world.events if e.name.startswith("issued")]


async def test_a_sub_agent_calling_the_ps_itself_is_refused(site: Site) -> None:
    world = site.world
    _parent_identity, sub_identity = identities(site)
    # The client does not let it...
    with pytest.raises(ConfigurationError, match="MUST NOT"):
        AAuth(sub_identity)
    # ...and the PS refuses it at every token endpoint.
    child = Agent(world, sub_identity.key, SUB_ID, sub_identity.agent_token, parent_agent=PARENT_ID)
    person = await child.post("/person", {"resource": API})
    assert person.status_code == 400 and problem(person) == "invalid_agent_token"
    assert "sub-agent" in person.json()["detail"]
    token = await child.post("/token", {"resource_token": "x.y.z"})
    assert token.status_code == 400 and problem(token) == "invalid_agent_token"
    # A parent-mediated request the sub-agent signs itself (its own subagent_token) too.
    itself = await child.post(
        "/person", {"resource": API, "subagent_token": sub_identity.agent_token}
    )
    assert itself.status_code == 400 and problem(itself) == "invalid_agent_token"


async def test_revoking_the_parents_grant_fails_the_next_sub_agent_authorization(
    site: Site,
) -> None:
    parent_identity, sub_identity = identities(site)
    parent = site.auth(parent_identity)
    sub = site.auth(sub_identity, parent=parent)
    async with site.client() as client:
        assert (await client.get(f"{API}/data", auth=sub)).status_code == 200
        issued = sub.state.current_auth_token(API, site.world.clock(), 0)
        assert issued is not None
        # The person revokes the parent's grant (its binding); the PS revokes what the
        # parent obtained, for itself and its sub-agents, at the API.
        report = await site.ps.unbind_agent(PARENT_ID)
        assert report.revoked == (issued.claims["jti"],) == report.notified
        refused = await client.get(f"{API}/data", auth=sub)
        assert refused.status_code == 403 and refused.json()["error"] == "revoked"
        # The next sub-agent authorization needs the person again, who now declines.
        sub.clear_cache()
        site.decide = "deny"
        with pytest.raises(DeniedError):
            await client.get(f"{API}/data", auth=sub)
    assert [(v.kind, v.agent_id, v.subagent, v.new_agent) for v in site.seen[-1:]] == [
        ("person_token", PARENT_ID, SUB_ID, True)
    ]


async def test_revoking_the_parents_agent_token_fails_the_sub_agent(site: Site) -> None:
    world = site.world
    parent_identity, sub_identity = identities(site)
    parent = site.auth(parent_identity)
    sub = site.auth(sub_identity, parent=parent)
    async with site.client() as client:
        assert (await client.get(f"{API}/data", auth=sub)).status_code == 200
        # The agent provider revokes the parent's agent token at the PS.
        jti = peek(parent_identity.agent_token)[1]["jti"]
        body = json.dumps({"iss": AP, "jti": jti}).encode()
        signed = sign_request(
            HttpRequest("POST", f"{PS}/revoke", {"content-type": "application/json"}, body),
            key=world.ap.key,
            clock=world.clock,
            signature_key=SignatureKey.from_jwks_uri(
                id=AP, dwk=DWK_AGENT, kid=str(world.ap.key.kid)
            ),
        )
        revoked = await world.client.post(
            f"{PS}/revoke", content=body, headers={"content-type": "application/json", **signed}
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json() == {"revoked_auth_tokens": 1, "notified": 1}
        sub.clear_cache()
        with pytest.raises(InvalidJWTError, match="revoked"):
            await client.get(f"{API}/data", auth=sub)
    assert len(site.seen) == 2  # nobody was asked again
