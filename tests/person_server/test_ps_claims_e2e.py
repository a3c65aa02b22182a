"""Every claim of every token that crosses the wire, end to end.

Real parts on real loopback HTTP (uvicorn on 127.0.0.1): this PS, an agent provider, and two
resources protected by :class:`~aauth_agents.resource.AAuthMiddleware`. The agent client
(:class:`~aauth_agents.agent.AAuth`) drives each flow -- person identity, three-party
authorization, step-up, mission -- once with ``httpx.Client`` and once with
``httpx.AsyncClient``, under a PS policy that approves at once and one that decides later
(``202`` ``requirement=approval``, polled).

An httpx response hook records every exchange. :class:`Auditor` then walks the recording and
checks each token it finds -- in ``Signature-Key``, in ``AAuth-Requirement``, in PS response
bodies -- against the spec's definitions (§Agent Token Structure, §Person Token Structure,
§Resource Token Structure, §Auth Token Structure, §Mission Approval): the header, an exact
claim set built from the spec's lists, each claim's value against what the exchange it came
from says it must be, the signature against the issuer's JWKS fetched over HTTP. Nothing is
mocked; the identities stay real (``https://ps.example``), only connections go to loopback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.ps import AP, DOCS, HOSTS, NOW, PASSWORD, PS, RES

from aauth_agents.agent import AAuth
from aauth_agents.agent.provider import LocalAgentProvider
from aauth_agents.clock import FrozenClock
from aauth_agents.discovery import AsyncDiscovery, EgressPolicy
from aauth_agents.httpsig.signature_key import parse_signature_key
from aauth_agents.keys import PrivateKey, PublicKey
from aauth_agents.protocol.requirement import parse_requirement
from aauth_agents.resource import (
    AAuthMiddleware,
    AAuthResource,
    AccessRule,
    ResourceConfig,
    RoutePolicy,
    require_caller,
)
from aauth_agents.servers import LoopbackServer
from aauth_agents.servers.person_server import (
    ApprovalPolicy,
    AutoApprove,
    ConsentRequest,
    Decision,
    PersonServer,
    PersonServerConfig,
    create_person_server,
)
from aauth_agents.stores import Stores
from aauth_agents.transport import AsyncMappedTransport, MappedTransport

EGRESS = EgressPolicy.for_mapped_hosts(HOSTS, allow_loopback=True)
#: Shorter than a person or auth token's hour, so the agent token's ``exp`` binds them.
AGENT_LIFETIME = 1800
#: Shorter still, so a mission's ``expires_at`` binds the tokens issued under it.
MISSION_LIFETIME = 1200
TENANT = "example-org"
ALICE = {
    "email": "alice@example.com",
    "email_verified": True,
    "name": "Alice Example",
    "given_name": "Alice",
    "phone_number": "+1 555 0100",
}

# -- the spec's claim lists ---------------------------------------------------------------------

HEADER = {"alg", "typ", "kid"}
TYP = {
    "agent": "aa-agent+jwt",
    "person": "aa-person+jwt",
    "resource": "aa-resource+jwt",
    "auth": "aa-auth+jwt",
}
DWK = {
    "agent": "aauth-agent.json",
    "person": "aauth-person.json",
    "resource": "aauth-resource.json",
    "auth": "aauth-person.json",
}  # three-party: PS-issued
#: §Agent Token Structure.
AGENT_REQUIRED = {"iss", "dwk", "sub", "jti", "cnf", "iat", "exp"}
AGENT_OPTIONAL = {"ps", "parent_agent"}
#: §Person Token Structure ("MUST NOT contain scope or account").
PERSON_REQUIRED = {"iss", "dwk", "aud", "sub", "cnf", "jti", "iat", "exp"}
PERSON_OPTIONAL = {"mission_s256", "tenant"}
#: §Resource Token Structure.
RESOURCE_REQUIRED = {
    "iss",
    "dwk",
    "aud",
    "jti",
    "ps",
    "sub",
    "presented_jti",
    "agent_jkt",
    "iat",
    "exp",
    "scope",
}
RESOURCE_OPTIONAL = {"account", "mission_s256", "tenant", "interaction"}
#: The one claim outside -11's lists we accept, by design: -11 renamed
#: ``person_token_jti`` to ``presented_jti`` (its change log); the deployed reference and
#: mockin 2.0 still read the old name, so both are emitted with the same value.
RESOURCE_ALIASES = {"person_token_jti": "presented_jti"}
#: §Auth Token Structure.
AUTH_REQUIRED = {"iss", "dwk", "aud", "jti", "ps", "sub", "cnf", "iat", "exp"}
AUTH_OPTIONAL = {"scope", "account", "mission_s256", "tenant"}
#: §Scopes: identity scopes release OpenID Connect claims (OpenID Connect Core 1.0 §5.4;
#: ``groups``/``roles`` from RFC 9068).
OIDC_SCOPE_CLAIMS: Mapping[str, frozenset[str]] = {
    "openid": frozenset(),
    "profile": frozenset(
        {
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        }
    ),
    "email": frozenset({"email", "email_verified"}),
    "address": frozenset({"address"}),
    "phone": frozenset({"phone_number", "phone_number_verified"}),
    "groups": frozenset({"groups"}),
    "roles": frozenset({"roles"}),
}
#: §Mission Approval: the blob's members.
MISSION_REQUIRED = {"approver", "agent", "approved_at", "description"}
MISSION_OPTIONAL = {"expires_at", "approved_tools", "approved_resources"}
#: Lifetime caps: agent 24 h (SHOULD), person and auth 1 h (MUST), resource 5 min (SHOULD).
CAP = {"agent": 24 * 3600, "person": 3600, "resource": 300, "auth": 3600}

READ_SCOPES = ("data.read", "email", "profile")


# -- small independent primitives --------------------------------------------------------------


def b64d(value: str) -> bytes:
    assert "=" not in value and "+" not in value and "/" not in value, value
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64e(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def jws_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(b64d(header)), json.loads(b64d(payload))


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 for an OKP key: the required members, sorted, no whitespace, SHA-256."""
    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    return b64e(
        hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    )


def unix(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- the world: four servers on loopback -------------------------------------------------------


class Late:
    """An ASGI app bound after its server started (the apps need each other's ports)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


async def whoami(request: Request) -> JSONResponse:
    """What the middleware verified: the resource's own view of the caller."""
    caller = require_caller()
    return JSONResponse(
        {
            "kind": caller.kind,
            "issuer": caller.issuer,
            "jti": caller.jti,
            "person": list(caller.person) if caller.person else None,
            "scopes": list(caller.scopes),
            "mission_s256": caller.mission_s256,
            "tenant": caller.tenant,
            "thumbprint": caller.thumbprint,
        }
    )


def protected(
    identifier: str,
    clock: FrozenClock,
    mapping: Mapping[str, str],
    scopes: Mapping[str, str],
    rules: Mapping[str, AccessRule],
) -> Starlette:
    resource = AAuthResource(
        ResourceConfig(
            identifier=identifier,
            signing_key=PrivateKey.generate(kid="res-1"),
            clock=clock,
            issuer_keys=AsyncDiscovery(
                transport=AsyncMappedTransport(mapping, strict=True), egress=EGRESS, clock=clock
            ),
            scope_descriptions=dict(scopes),
            name=f"Resource at {identifier}",
            stores=Stores.memory(clock=clock),
        )
    )
    app = Starlette(routes=[Route(path, whoami) for path in rules])
    app.add_middleware(AAuthMiddleware, resource=resource, policy=RoutePolicy(dict(rules)))
    return app


@dataclass
class World:
    """The servers' shared parts, and what the audits remember across the module."""

    clock: FrozenClock
    ap: LocalAgentProvider
    ps: PersonServer
    mapping: dict[str, str]  # identifier -> http://127.0.0.1:PORT
    decided: list[ConsentRequest]  # what the deferred policy's decider was asked
    http: httpx.Client  # the test's own client: metadata and JWKS for verification
    jtis: dict[str, str] = field(default_factory=dict)  # jti -> token (module-wide uniqueness)
    subs: dict[str, str] = field(default_factory=dict)  # aud -> alice's directed sub there
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (iss, kid)


def consent(decided: list[ConsentRequest]) -> Callable[[ConsentRequest], Decision]:
    """Agents named ``auto-*`` are approved at once; every other agent's new requests are
    decided later, by a decider the PS runs after answering ``202 requirement=approval``
    (each request it decides is appended to ``decided``)."""
    auto = AutoApprove("alice")

    def decide(request: ConsentRequest) -> Decision:
        decided.append(request)
        return Decision.approve(account="alice")

    deferred = ApprovalPolicy(decide)

    def policy(request: ConsentRequest) -> Decision:
        local = request.agent_id.split(":", 1)[1]
        return (auto if local.startswith("auto-") else deferred).decide(request)

    return policy


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    clock = FrozenClock(NOW)
    late = {name: Late() for name in (PS, AP, RES, DOCS)}
    servers = {name: LoopbackServer(app).start() for name, app in late.items()}
    mapping = {name: server.url for name, server in servers.items()}
    ap = LocalAgentProvider(
        AP,
        PrivateKey.generate(kid="ap-1"),
        ps=PS,
        clock=clock,
        lifetime=AGENT_LIFETIME,
        name="Example Agents",
    )
    late[AP].app = ap.app()
    late[RES].app = protected(
        RES,
        clock,
        mapping,
        {"data.read": "Read your documents", "data.write": "Change your documents"},
        {
            "/me": AccessRule.person(),
            "/data": AccessRule.auth(*READ_SCOPES),
            "/write": AccessRule.auth("data.write"),
        },
    )
    late[DOCS].app = protected(
        DOCS,
        clock,
        mapping,
        {"docs.read": "Read your docs"},
        {"/me": AccessRule.person(), "/docs": AccessRule.auth("docs.read")},
    )
    decided: list[ConsentRequest] = []
    app = create_person_server(
        PersonServerConfig(
            issuer=PS,
            clock=clock,
            password_log2_n=14,
            mission_lifetime=MISSION_LIFETIME,
            policy=consent(decided),
            discovery=AsyncDiscovery(
                transport=AsyncMappedTransport(mapping, strict=True), egress=EGRESS, clock=clock
            ),
            transport=AsyncMappedTransport(mapping, strict=True),
        )
    )
    late[PS].app = app
    ps: PersonServer = app.state.person_server
    ps.accounts.create_account("alice", PASSWORD, claims=ALICE, tenant=TENANT)
    try:
        with httpx.Client(transport=MappedTransport(mapping, strict=True)) as http:
            yield World(clock=clock, ap=ap, ps=ps, mapping=mapping, decided=decided, http=http)
    finally:
        for server in servers.values():
            server.stop()
        ps.close()


# -- the agent, with either client -------------------------------------------------------------


@dataclass
class Exchange:
    """One request the agent's client sent and the response it got, as on the wire."""

    method: str
    url: str
    credential: str | None  # the token in Signature-Key, if the request was signed
    body: Any
    status: int
    headers: httpx.Headers
    data: Any
    at: float  # the clock when the response arrived

    @property
    def origin(self) -> str:
        return origin(self.url)


class Wire:
    """An httpx response hook recording every exchange (the request rides on the response)."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.exchanges: list[Exchange] = []

    def record(self, response: httpx.Response) -> None:
        request = response.request
        signature_key = request.headers.get("signature-key")
        credential = parse_signature_key(signature_key)[1].jwt if signature_key else None
        body = json.loads(request.content) if request.content else None
        is_json = response.headers.get("content-type", "").split(";")[0].endswith("json")
        data = response.json() if is_json and response.content else None
        self.exchanges.append(
            Exchange(
                request.method,
                str(request.url),
                credential,
                body,
                response.status_code,
                response.headers,
                data,
                self.clock(),
            )
        )

    def sync_hook(self, response: httpx.Response) -> None:
        response.read()
        self.record(response)

    async def async_hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.record(response)


class Agent:
    """One agent (its own key and identifier) on ``httpx.Client`` or ``httpx.AsyncClient``.
    Async calls run on one event loop kept for the agent's life."""

    def __init__(self, world: World, mode: str, name: str) -> None:
        self.key = PrivateKey.generate()
        self.agent_id = f"aauth:{name}@agents.example"
        self.wire = Wire(world.clock)
        clock = world.clock
        self.auth = AAuth(
            world.ap.identity(self.key, self.agent_id),
            clock=clock,
            sleep=lambda seconds: clock.advance(max(float(seconds), 1.0)),
            justification=f"{name} needs it",
            prefer_wait=None,
        )
        self.runner: asyncio.Runner | None = None
        if mode == "sync":
            self.client: Any = httpx.Client(
                auth=self.auth,
                transport=MappedTransport(world.mapping, strict=True),
                event_hooks={"response": [self.wire.sync_hook]},
            )
            self.governance: Any = self.auth.governance(self.client)
        else:
            self.runner = asyncio.Runner()
            self.client = httpx.AsyncClient(
                auth=self.auth,
                transport=AsyncMappedTransport(world.mapping, strict=True),
                event_hooks={"response": [self.wire.async_hook]},
            )
            self.governance = self.auth.async_governance(self.client)

    @property
    def public(self) -> PublicKey:
        return self.key.public_key

    def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)`` of the client or the governance client, awaited on
        the agent's loop when async."""
        result = method(*args, **kwargs)
        return self.runner.run(result) if self.runner is not None else result

    def get(self, url: str) -> httpx.Response:
        response: httpx.Response = self.call(self.client.get, url)
        return response

    def close(self) -> None:
        if self.runner is not None:
            self.runner.run(self.client.aclose())
            self.runner.close()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["auto", "deferred"])
def policy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def agents(
    world: World, mode: str, policy: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Agent]]:
    """Agents for this test, named ``{policy}-{test}-{mode}-{n}``; closed afterwards."""
    made: list[Agent] = []
    flow = request.node.originalname.removeprefix("test_").replace("_", "-")

    def make(n: str = "1") -> Agent:
        made.append(Agent(world, mode, f"{policy}-{flow}-{mode}-{n}"))
        return made[-1]

    yield make
    for agent in made:
        agent.close()


# -- checking every token ----------------------------------------------------------------------


@dataclass
class Seen:
    """What one audit found, by token type: ``(claims, exchange)`` in wire order."""

    agent: list[dict[str, Any]] = field(default_factory=list)
    person: list[tuple[dict[str, Any], Exchange]] = field(default_factory=list)
    resource: list[tuple[dict[str, Any], Exchange]] = field(default_factory=list)
    auth: list[tuple[dict[str, Any], Exchange]] = field(default_factory=list)
    missions: list[dict[str, Any]] = field(default_factory=list)  # approved blobs


class Auditor:
    """Walks one agent's exchanges and checks every token in them (see the module doc)."""

    def __init__(self, world: World, agent: Agent) -> None:
        self.world = world
        self.agent = agent
        self.jkt = thumbprint(agent.public.to_jwk())
        self.claims: dict[str, dict[str, Any]] = {}  # token -> verified claims
        self.seen = Seen()
        self.pending: dict[str, Exchange] = {}  # pending URL -> the request that made it
        self.missions: dict[str, dict[str, Any]] = {}  # s256 -> blob
        self.presented: dict[str, dict[str, Any]] = {}  # resource -> last person token shown

    # -- keys, headers, common claims ----------------------------------------------------------

    def issuer_key(self, iss: str, dwk: str, kid: str) -> dict[str, Any]:
        """The JWK ``kid`` from ``{iss}/.well-known/{dwk}``'s ``jwks_uri``, over HTTP."""
        if (iss, kid) not in self.world.keys:
            metadata = self.world.http.get(f"{iss}/.well-known/{dwk}").raise_for_status().json()
            assert metadata["issuer"] == iss
            jwks = self.world.http.get(metadata["jwks_uri"]).raise_for_status().json()
            for jwk in jwks["keys"]:  # public members, alg and kid: nothing private
                assert set(jwk) == {"kty", "crv", "x", "alg", "kid"}, jwk
                self.world.keys[(iss, jwk["kid"])] = jwk
        return self.world.keys[(iss, kid)]

    def verified(self, token: str, kind: str, iss: str) -> dict[str, Any]:
        """Header and signature (§Signature Algorithms: a fully-specified ``alg``), and
        ``iss``/``dwk`` as the type requires; the claims, once per token."""
        if token in self.claims:
            return self.claims[token]
        header, claims = jws_parts(token)
        assert set(header) == HEADER, header
        assert header["typ"] == TYP[kind] and header["alg"] == "Ed25519", header
        assert claims["iss"] == iss and claims["dwk"] == DWK[kind], claims
        jwk = self.issuer_key(iss, claims["dwk"], header["kid"])
        assert jwk["kty"] == "OKP" and jwk["crv"] == jwk["alg"] == "Ed25519"
        signing_input, _, signature = token.rpartition(".")
        Ed25519PublicKey.from_public_bytes(b64d(jwk["x"])).verify(
            b64d(signature), signing_input.encode()
        )
        other = self.world.jtis.setdefault(claims["jti"], token)
        assert other == token, f"jti {claims['jti']} names two tokens"
        assert isinstance(claims["jti"], str) and claims["jti"]
        self.claims[token] = claims
        return claims

    def check_cnf(self, claims: Mapping[str, Any]) -> None:
        """``cnf.jwk`` is the agent's public key: an OKP key's public members and the
        REQUIRED fully-specified ``alg``, nothing else (no private ``d``)."""
        assert set(claims["cnf"]) == {"jwk"}, claims["cnf"]
        jwk = claims["cnf"]["jwk"]
        assert set(jwk) == {"kty", "crv", "x", "alg"}, jwk
        assert jwk["alg"] == jwk["crv"] == "Ed25519" and jwk["kty"] == "OKP", jwk
        assert thumbprint(jwk) == self.jkt

    @staticmethod
    def check_times(claims: Mapping[str, Any], kind: str, at: float, *bounds: float | None) -> None:
        """Integer NumericDates, not issued in the future, valid when received, at most the
        type's cap, and never past any bound (agent token exp, mission expires_at)."""
        iat, exp = claims["iat"], claims["exp"]
        assert type(iat) is int and type(exp) is int
        assert NOW <= iat <= at < exp, (iat, at, exp)
        assert exp - iat <= CAP[kind], (kind, exp - iat)
        for bound in bounds:
            if bound is not None:
                assert exp <= bound, (kind, exp, bound)

    def check_sub(self, claims: Mapping[str, Any]) -> None:
        """§Directed identifiers: alice has one ``sub`` per resource, different at each."""
        sub, aud = claims["sub"], claims["aud"]
        assert isinstance(sub, str) and sub
        assert self.world.subs.setdefault(aud, sub) == sub, (aud, sub)
        assert [a for a, s in self.world.subs.items() if s == sub] == [aud]

    def agent_exp(self, *exchanges: Exchange) -> int:
        """The earliest ``exp`` of the agent tokens that signed ``exchanges`` (each checked
        when it was presented)."""
        return min(int(self.claims[e.credential]["exp"]) for e in exchanges if e.credential)

    # -- one function per token type -----------------------------------------------------------

    def check_agent(self, token: str, e: Exchange) -> None:
        """§Agent Token Structure, the first time the token is presented."""
        if token in self.claims:
            return
        claims = self.verified(token, "agent", AP)
        assert set(claims) == AGENT_REQUIRED | {"ps"}, claims  # our agents have a PS
        assert set(claims) <= AGENT_REQUIRED | AGENT_OPTIONAL
        assert claims["sub"] == self.agent.agent_id and claims["ps"] == PS
        self.check_cnf(claims)
        self.check_times(claims, "agent", e.at)
        assert claims["exp"] - claims["iat"] == AGENT_LIFETIME
        self.seen.agent.append(claims)

    def check_person(
        self, token: str, e: Exchange, resource: str, mission: str | None, not_after: float
    ) -> dict[str, Any]:
        """§Person Token Structure, for the ``resource`` (and ``mission``) the agent asked
        for; retained by the PS as §Person Token Endpoint requires."""
        claims = self.verified(token, "person", PS)
        # alice's account has a tenant; the agent asked under ``mission`` or none.
        expected = PERSON_REQUIRED | {"tenant"} | ({"mission_s256"} if mission else set())
        assert set(claims) == expected, claims
        assert expected <= PERSON_REQUIRED | PERSON_OPTIONAL
        assert claims["aud"] == resource and claims.get("mission_s256") == mission
        assert claims["tenant"] == TENANT
        self.check_sub(claims)
        self.check_cnf(claims)
        self.check_times(claims, "person", e.at, not_after, self.mission_end(mission))
        record = self.world.ps.state.person_token(claims["jti"], e.at)
        assert record is not None
        assert (record.aud, record.sub, record.mission_s256, record.tenant, record.exp) == (
            resource,
            claims["sub"],
            mission,
            TENANT,
            claims["exp"],
        )
        assert record.agent_id == self.agent.agent_id
        self.seen.person.append((claims, e))
        return claims

    def check_resource(self, token: str, e: Exchange) -> dict[str, Any]:
        """§Resource Token Structure, for the challenge ``e`` answered: issued by the resource
        called, resting on the person token it verified (presented now, or on a step-up the
        one it recorded earlier), bound to the agent's key."""
        claims = self.verified(token, "resource", e.origin)
        person = self.presented[e.origin]
        if e.credential is not None:
            presented = self.claims[e.credential]
            assert presented["aud"] == e.origin
            assert presented.get("mission_s256") == person.get("mission_s256")
        copied = {"mission_s256", "tenant"} & set(person)  # REQUIRED when the person token had it
        expected = RESOURCE_REQUIRED | set(RESOURCE_ALIASES) | copied
        assert set(claims) == expected, claims
        for alias, name in RESOURCE_ALIASES.items():
            assert claims[alias] == claims[name]
        assert claims["aud"] == PS and claims["ps"] == person["iss"] == PS
        assert claims["sub"] == person["sub"] and claims["presented_jti"] == person["jti"]
        assert all(claims[name] == person[name] for name in copied)
        assert claims["agent_jkt"] == self.jkt
        self.check_times(claims, "resource", e.at, self.mission_end(claims.get("mission_s256")))
        metadata = (
            self.world.http.get(f"{e.origin}/.well-known/aauth-resource.json")
            .raise_for_status()
            .json()
        )
        ps_metadata = self.world.http.get(f"{PS}/.well-known/aauth-person.json").json()
        identity = set(OIDC_SCOPE_CLAIMS) & set(ps_metadata["scopes_supported"])
        scopes = claims["scope"].split(" ")
        assert scopes and all(
            s in metadata["scope_descriptions"] or s in identity for s in scopes
        ), scopes
        self.seen.resource.append((claims, e))
        return claims

    def check_auth(
        self, token: str, e: Exchange, rt: Mapping[str, Any], not_after: float
    ) -> dict[str, Any]:
        """§Auth Token Structure, issued by this PS for the resource token ``rt``: its
        ``sub``, ``aud`` (the resource), scope never broader, mission and tenant copied, and
        the identity claims the granted identity scopes release, all advertised."""
        claims = self.verified(token, "auth", PS)
        granted = claims["scope"].split(" ")
        released = set().union(*(OIDC_SCOPE_CLAIMS.get(s, frozenset()) for s in granted))
        identity = released & set(ALICE)
        copied = {"mission_s256", "tenant", "account"} & set(rt)
        expected = AUTH_REQUIRED | {"scope"} | copied | identity
        assert set(claims) == expected, claims
        assert expected - identity <= AUTH_REQUIRED | AUTH_OPTIONAL
        ps_metadata = self.world.http.get(f"{PS}/.well-known/aauth-person.json").json()
        assert identity <= set(ps_metadata["claims_supported"])
        assert all(claims[name] == ALICE[name] for name in identity)
        assert claims["ps"] == claims["iss"] == rt["aud"]
        assert claims["aud"] == rt["iss"] and claims["sub"] == rt["sub"]
        assert set(granted) <= set(rt["scope"].split(" ")), (granted, rt["scope"])
        assert all(claims[name] == rt[name] for name in copied)
        self.check_sub(claims)
        self.check_cnf(claims)
        self.check_times(
            claims, "auth", e.at, not_after, self.mission_end(claims.get("mission_s256"))
        )
        self.seen.auth.append((claims, e))
        return claims

    def check_mission(
        self, data: Mapping[str, Any], proposal: Mapping[str, Any], e: Exchange
    ) -> str:
        """§Mission Approval: ``s256`` is the digest of the exact bytes ``mission`` carries;
        the blob has the spec's members and names this PS and this agent."""
        assert set(data) <= {"s256", "mission", "capabilities", "person_tokens"}, data
        raw = b64d(data["mission"])
        s256 = data["s256"]
        assert s256 == b64e(hashlib.sha256(raw).digest())
        blob = json.loads(raw)
        assert MISSION_REQUIRED <= set(blob) <= MISSION_REQUIRED | MISSION_OPTIONAL, blob
        assert blob["approver"] == PS and blob["agent"] == self.agent.agent_id
        assert blob["description"] == proposal["description"]
        approved_at = unix(blob["approved_at"])
        assert NOW <= approved_at <= e.at
        assert unix(blob["expires_at"]) == approved_at + MISSION_LIFETIME
        assert blob["approved_tools"] == proposal["tools"]
        assert blob["approved_resources"] == proposal["resources"]
        self.missions[s256] = blob
        self.seen.missions.append(blob)
        return str(s256)

    def mission_end(self, s256: str | None) -> float | None:
        return None if s256 is None else unix(self.missions[s256]["expires_at"])

    # -- the walk ------------------------------------------------------------------------------

    def audit(self) -> Seen:
        for e in self.agent.wire.exchanges:
            self.presentation(e)
            self.response(e)
        assert self.seen.agent, "no agent token crossed the wire"
        return self.seen

    def presentation(self, e: Exchange) -> None:
        """The token in ``Signature-Key``: the agent token anywhere; a person or auth token
        only at the resource it names (already checked when the PS issued it)."""
        if e.credential is None:
            return
        typ = jws_parts(e.credential)[0]["typ"]
        if typ == TYP["agent"]:
            self.check_agent(e.credential, e)
            return
        assert e.origin in (RES, DOCS) and e.credential in self.claims, typ
        claims = self.claims[e.credential]
        assert claims["aud"] == e.origin
        if typ == TYP["person"]:
            self.presented[e.origin] = claims
        if e.status == 200:  # the resource's verified caller is this token
            scope = claims.get("scope")
            assert e.data == {
                "kind": "person" if typ == TYP["person"] else "auth",
                "issuer": PS,
                "jti": claims["jti"],
                "person": [PS, claims["sub"]],
                "scopes": scope.split(" ") if scope else [],
                "mission_s256": claims.get("mission_s256"),
                "tenant": claims["tenant"],
                "thumbprint": self.jkt,
            }, e.data

    def response(self, e: Exchange) -> None:
        requirement = e.headers.get("aauth-requirement")
        if requirement is not None and parse_requirement(requirement).resource_token:
            rt = parse_requirement(requirement).resource_token
            assert rt is not None and e.status == 401
            self.check_resource(rt, e)
        made = self.pending.get(e.url, e)  # a poll answers for the request that made it
        if e.status == 202:
            self.pending[urljoin(e.url, e.headers["location"])] = made
        if e.status != 200 or e.origin != PS or e.credential is None:
            return  # documents (metadata, JWKS) are fetched unsigned
        not_after = self.agent_exp(made, e)
        if "person_token" in e.data:
            assert set(e.data) == {"person_token", "expires_in"}
            claims = self.check_person(
                e.data["person_token"],
                e,
                made.body["resource"],
                made.body.get("mission_s256"),
                not_after,
            )
            assert e.data["expires_in"] == claims["exp"] - claims["iat"]
        if "auth_token" in e.data:
            assert set(e.data) == {"auth_token", "expires_in"}
            rt = self.claims[made.body["resource_token"]]  # one a resource challenged with
            claims = self.check_auth(e.data["auth_token"], e, rt, not_after)
            assert e.data["expires_in"] == claims["exp"] - claims["iat"]
        if "mission" in e.data:
            s256 = self.check_mission(e.data, made.body, e)
            tokens = e.data.get("person_tokens", {})
            assert set(tokens) == set(made.body["resources"])
            for resource, token in tokens.items():
                self.check_person(token, e, resource, s256, not_after)


def audit(world: World, agent: Agent) -> Seen:
    return Auditor(world, agent).audit()


def challenges(agent: Agent) -> list[str]:
    """The ``AAuth-Requirement`` values the resources answered with, in order."""
    return [
        parse_requirement(e.headers["aauth-requirement"]).value
        for e in agent.wire.exchanges
        if "aauth-requirement" in e.headers and e.origin != PS
    ]


def check_policy_path(world: World, agent: Agent, policy: str, kinds: list[str]) -> None:
    """Approved at once, or: each request was answered ``202 requirement=approval`` and
    decided by the policy's decider, which saw these ``kinds`` for this agent."""
    waits = [e for e in agent.wire.exchanges if e.status == 202]
    decided = [r for r in world.decided if r.agent_id == agent.agent_id]
    if policy == "auto":
        assert waits == [] and decided == []
        return
    assert [r.kind for r in decided] == kinds
    assert len(waits) >= len(kinds)
    assert all(e.origin == PS and e.headers["location"] for e in waits)
    assert {parse_requirement(e.headers["aauth-requirement"]).value for e in waits} == {"approval"}


# -- the flows ---------------------------------------------------------------------------------


def test_person_identity(world: World, agents: Callable[[str], Agent], policy: str) -> None:
    """A resource that serves on identity alone (§Person Identity Access): one person token
    per resource, a directed ``sub`` that is stable at a resource and differs between two."""
    agent = agents("1")
    assert agent.get(f"{RES}/me").status_code == 200
    assert agent.get(f"{DOCS}/me").status_code == 200
    agent.auth.clear_cache()  # a new person token for the same resource: the same sub
    assert agent.get(f"{RES}/me").status_code == 200
    assert challenges(agent) == ["person-token", "person-token", "person-token"]
    seen = audit(world, agent)
    person = [claims for claims, _ in seen.person]
    assert [c["aud"] for c in person] == [RES, DOCS, RES]
    assert person[0]["sub"] == person[2]["sub"] != person[1]["sub"]
    assert len({c["jti"] for c in person}) == 3
    assert seen.resource == [] and seen.auth == []
    check_policy_path(world, agent, policy, ["person_token", "person_token"])
    if policy == "deferred":  # the person was shown each resource from its metadata
        asked = [r.resource for r in world.decided if r.agent_id == agent.agent_id]
        assert [(r.identifier, r.name) if r else None for r in asked] == [
            (RES, f"Resource at {RES}"),
            (DOCS, f"Resource at {DOCS}"),
        ]

    other = agents("2")  # another agent of alice's: the same person at the same resource
    assert other.get(f"{RES}/me").status_code == 200
    assert [c["sub"] for c, _ in audit(world, other).person] == [person[0]["sub"]]


def test_three_party(world: World, agents: Callable[[str], Agent], policy: str) -> None:
    """§PS Authorization Access: person token, resource token, auth token; identity scopes
    release exactly their OpenID Connect claims (``phone_number`` is not asked for)."""
    agent = agents("1")
    response = agent.get(f"{RES}/data")
    assert response.status_code == 200, response.text
    assert agent.get(f"{DOCS}/docs").status_code == 200
    assert challenges(agent) == ["person-token", "auth-token"] * 2
    seen = audit(world, agent)
    (rt_res, _), (rt_docs, _) = seen.resource
    assert rt_res["scope"] == " ".join(READ_SCOPES) and rt_docs["scope"] == "docs.read"
    (at_res, _), (at_docs, _) = seen.auth
    assert at_res["scope"] == rt_res["scope"] and at_docs["scope"] == "docs.read"
    assert at_res["email"] == ALICE["email"] and "phone_number" not in at_res
    assert "email" not in at_docs
    assert at_res["sub"] != at_docs["sub"]
    assert [(p["aud"], p["sub"]) for p, _ in seen.person] == [
        (a["aud"], a["sub"]) for a, _ in seen.auth
    ]
    # The agent token ends within the hour: the PS cut every token to fit it.
    [agent_token] = seen.agent
    assert all(c["exp"] == agent_token["exp"] for c, _ in seen.person + seen.auth)
    check_policy_path(world, agent, policy, ["person_token", "auth_token"] * 2)
    if policy == "deferred":
        asked = [
            r for r in world.decided if r.agent_id == agent.agent_id and r.kind == "auth_token"
        ]
        assert [
            (r.resource.identifier if r.resource else None, r.scopes, r.justification)
            for r in asked
        ] == [
            (RES, READ_SCOPES, agent.auth.config.justification),
            (DOCS, ("docs.read",), agent.auth.config.justification),
        ]


def test_step_up(world: World, agents: Callable[[str], Agent], policy: str) -> None:
    """§Auth Token Required, step-up: a second scope at the same resource. The resource
    re-challenges the auth token with a resource token naming the person token it verified
    earlier (``presented_jti``); the PS issues the broader token."""
    agent = agents("1")
    assert agent.get(f"{RES}/data").status_code == 200
    response = agent.get(f"{RES}/write")
    assert response.status_code == 200, response.text
    assert challenges(agent) == ["person-token", "auth-token", "auth-token"]
    again = agent.get(f"{RES}/data")  # the broader token still serves the first route
    assert again.status_code == 200, again.text
    assert challenges(agent) == ["person-token", "auth-token", "auth-token"]
    seen = audit(world, agent)
    [(person, _)] = seen.person
    (first, _), (step_up, challenged) = seen.resource
    assert jws_parts(challenged.credential or "")[0]["typ"] == "aa-auth+jwt"
    assert first["presented_jti"] == step_up["presented_jti"] == person["jti"]
    # What was granted (identity scopes included) plus the new scope.
    assert step_up["scope"] == " ".join((*READ_SCOPES, "data.write"))
    (narrow, _), (broad, _) = seen.auth
    assert narrow["sub"] == broad["sub"] == person["sub"]
    assert (narrow["scope"], broad["scope"]) == (first["scope"], step_up["scope"])
    assert narrow["email"] == broad["email"] == ALICE["email"]
    check_policy_path(world, agent, policy, ["person_token", "auth_token", "auth_token"])


def test_mission(world: World, agents: Callable[[str], Agent], policy: str) -> None:
    """§Mission: propose and approve (``s256`` checked), the person token issued with the
    approval and one requested later under ``mission_s256``, auth tokens carrying it (a
    step-up included), all ending by the mission's ``expires_at``; every token, permission
    and audit lands in the mission log."""
    agent = agents("1")
    approval = agent.call(
        agent.governance.propose_mission,
        "# Report\n\nFetch the report.",
        tools=[{"name": "WebSearch", "description": "Search the web"}],
        resources=[RES],
    )
    assert agent.auth.mission_s256 == approval.s256
    assert agent.get(f"{RES}/data").status_code == 200
    assert agent.get(f"{RES}/write").status_code == 200
    assert agent.get(f"{DOCS}/docs").status_code == 200
    mailed = agent.call(
        agent.governance.request_permission, "SendEmail", description="Mail the report to Bob"
    )
    searched = agent.call(agent.governance.request_permission, "WebSearch")
    assert mailed.granted and searched.granted
    agent.call(
        agent.governance.audit, "FetchReport", description="Fetched the report", result={"pages": 3}
    )
    # The mission's person token for RES came with the approval: no person-token challenge.
    assert challenges(agent) == ["auth-token", "auth-token", "person-token", "auth-token"]
    seen = audit(world, agent)
    [blob] = seen.missions
    end = unix(blob["expires_at"])
    assert [(p["aud"], p["mission_s256"]) for p, _ in seen.person] == [
        (RES, approval.s256),
        (DOCS, approval.s256),
    ]
    assert [rt["mission_s256"] for rt, _ in seen.resource] == [approval.s256] * 3
    assert [(a["aud"], a["mission_s256"]) for a, _ in seen.auth] == [
        (RES, approval.s256),
        (RES, approval.s256),
        (DOCS, approval.s256),
    ]
    # The mission ends before the agent token does: every token under it is cut to fit.
    assert all(c["exp"] == end for c, _ in seen.person + seen.auth)
    assert dict(approval.mission) == blob
    log = [
        (entry.kind, json.loads(entry.entry)) for entry in world.ps.state.mission_log(approval.s256)
    ]
    kinds = [kind for kind, _ in log]
    assert kinds[0] == "approved"
    for kind, tokens in (("person_token", seen.person), ("auth_token", seen.auth)):
        issued = [(e["resource"], e["jti"]) for k, e in log if k == kind]
        assert issued == [(c["aud"], c["jti"]) for c, _ in tokens]
    assert {
        (kind, e.get("action"), e.get("permission"))
        for kind, e in log
        if kind.startswith("permission")
    } == {
        ("permission_request", "SendEmail", None),
        ("permission_response", "SendEmail", "granted"),
        ("permission_request", "WebSearch", None),
        ("permission_response", "WebSearch", "granted"),
    }
    [audited] = [e for kind, e in log if kind == "audit"]
    assert audited["action"] == "FetchReport" and audited["result"] == {"pages": 3}
    check_policy_path(
        world,
        agent,
        policy,
        ["mission", "auth_token", "auth_token", "person_token", "auth_token", "permission"],
    )
